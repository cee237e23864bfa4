"""What the optimiser's planners share: the request view, a plan step, and encode jobs.

A planner (:mod:`.plan_codings`, :mod:`.plan_images`) looks at a stored identity
response and a request and returns a :data:`Step`: a response ready to send, ``None``
(send the stored response as it is), or a :class:`Job` that makes a missing variant.
The :class:`~cdn_core.optimize.transform.Transformer` runs jobs in its pool and records
their :class:`Outcome`. No I/O here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cdn_core.optimize import compress, images
from cdn_core.optimize.metrics import OptimizeMetrics
from cdn_core.optimize.variants import VariantSpec
from cdn_core.store.entry import StoredResponse

AE = "Accept-Encoding"
_MEMO = 1024  # distinct Accept / Accept-Encoding / Content-Type values remembered


class RequestView(Protocol):
    """What the optimiser reads of a request (``cdn_core.node.exchange.request.Request``)."""

    @property
    def method(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def fields(self) -> Mapping[str, str]: ...


@dataclass(slots=True)
class Outcome:
    """A finished job: ``body`` when ``outcome`` is ``ok``; ``larger`` (not smaller than
    the baseline), ``error`` or ``refused`` (over the image limits) with ``message``."""

    body: bytes | None
    outcome: str
    message: str = ""


@dataclass(slots=True)
class Job:
    """A variant to make: ``work`` runs in the pool, once per ``flight`` key."""

    flight: tuple[Any, ...]
    spec: VariantSpec
    work: Callable[[], Outcome]


Step = StoredResponse | Job | None


def memo(table: dict[Any, Any], key: Any, make: Callable[[Any], Any]) -> Any:
    """``make(key)`` remembered in ``table`` (cleared when it holds ``_MEMO`` values: the
    keys are header values, so a client sending random ones cannot grow it)."""
    value = table.get(key)
    if value is None:
        if len(table) >= _MEMO:
            table.clear()
        value = table[key] = make(key)
    return value


def make_job(
    entry: StoredResponse,
    spec: VariantSpec,
    fn: Callable[[bytes], bytes],
    metrics: OptimizeMetrics,
    *,
    baseline: int | None = None,
) -> Job:
    """A :class:`Job` applying ``fn`` to ``entry.body`` in a worker thread; with
    ``baseline`` (bytes) an output not smaller than it is discarded as ``larger``."""
    body, kind = entry.body, spec.kind

    def work() -> Outcome:  # in a worker thread
        start = time.thread_time()
        try:
            out = fn(body)
        except images.ImageRefused as exc:
            return Outcome(None, "refused", str(exc))
        except (images.ImageError, compress.EncodeError) as exc:
            return Outcome(None, "error", str(exc))
        metrics.encoded(kind, len(body), len(out), time.thread_time() - start)
        if baseline is not None and len(out) >= baseline:
            return Outcome(None, "larger")
        return Outcome(out, "ok")

    # id(body): the job holds the body, so the id is unique while it runs; entries
    # sharing one body (after a 304 refresh) share the job.
    return Job((id(body), entry.key, entry.vary_key, spec.label), spec, work)
