"""What a node stores and for how long: the memory and disk budgets, the admission and
eviction policy, and the RFC 9111/9213 knobs (heuristic freshness, targeted fields).
Field ``cache`` of :class:`cdn_core.node.settings.node.NodeConfig`."""

from __future__ import annotations

from pydantic import Field

from cdn_core.config import StrictModel
from cdn_core.store.policy import PolicyName


class CacheSettings(StrictModel):
    """What the node stores and for how long (RFC 9111): memory and disk budgets, the
    eviction policy, heuristic freshness, targeted fields (RFC 9213)."""

    max_bytes: int = Field(256 * 1024 * 1024, gt=0, description="memory budget, bytes")
    max_object_bytes: int = Field(
        16 * 1024 * 1024, gt=0, description="largest object stored, bytes; larger ones stream"
    )
    max_variants: int = Field(16, ge=1, description="variants per cache key (Vary)")
    policy: PolicyName = Field(
        "wtinylfu", description="admission/eviction policy of the memory store"
    )
    disk_path: str | None = Field(
        None, description="directory of the on-disk tier (mid tiers); null: memory only"
    )
    disk_max_bytes: int = Field(
        10 * 1024 * 1024 * 1024, gt=0, description="on-disk tier budget, bytes"
    )
    disk_fsync: bool = Field(
        True, description="fsync each disk write before it counts (off: faster, may lose writes)"
    )
    heuristic_fraction: float = Field(
        0.1, ge=0, le=1, description="heuristic freshness lifetime as a fraction of the time "
        "since Last-Modified, for responses without an explicit one (RFC 9111 4.2.2)")
    heuristic_max_seconds: float = Field(
        86_400, ge=0, description="upper bound of a heuristic freshness lifetime, seconds")
    hit_for_miss_seconds: float = Field(
        120, ge=0, description="how long an uncacheable key skips request collapsing"
    )
    targeted_fields: list[str] = Field(
        default_factory=lambda: ["CDN-Cache-Control", "Surrogate-Control"],
        description="RFC 9213 targeted Cache-Control fields this tier obeys, first wins",
    )
    strip_targeted_fields: bool = Field(
        False, description="remove targeted fields from responses (the tier facing clients)"
    )
    share_set_cookie: bool = Field(
        False, description="store Set-Cookie responses the origin marks public or s-maxage"
    )
    store_with_short_cookies: bool = Field(
        False,
        description="store responses to requests whose Cookie has a value under 8 bytes "
        "(too short to check the response for reflection)",
    )
