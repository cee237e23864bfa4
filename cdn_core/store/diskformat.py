"""The on-disk format of the disk tier (:mod:`cdn_core.store.disk`).

One file per stored response (variant), named by a hash of its primary and secondary
key, under 256 fan-out directories::

    header  "<8sIIQI"  magic b"CDNSTOR1", meta length, CRC-32 of meta, body length,
                       CRC-32 of body
    meta    JSON: key, host, status, reason, headers, fields, Vary names and key,
            surrogate keys, freshness (lifetime, corrected initial age, response time
            since the epoch), the pre-serialised head, validators
    body

The body's CRC is checked on every read and the metadata's when the index is loaded;
:class:`CorruptEntry` reports a file that fails either, or its header.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.decision import Freshness
from cdn_core.http_cache.vary import VaryKey
from cdn_core.store.entry import StoredResponse

MAGIC = b"CDNSTOR1"
HEADER = struct.Struct("<8sIIQI")
SUFFIX = ".cr"


class CorruptEntry(Exception):
    """A cache file failed its checks."""


def file_name(key: str, vary_key: VaryKey) -> str:
    """The file name (without fan-out directory or suffix) of one variant."""
    raw = json.dumps([key, vary_key], separators=(",", ":")).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def encode_meta(entry: StoredResponse) -> bytes:
    """The JSON metadata of ``entry`` (everything but the body)."""
    f = entry.freshness
    return json.dumps(
        {
            "key": entry.key,
            "host": entry.host,
            "status": entry.status,
            "reason": entry.reason,
            "headers": entry.headers,
            "fields": entry.fields,
            "vary_names": entry.vary_names,
            "vary_key": entry.vary_key,
            "tags": sorted(entry.surrogate_keys),
            "freshness": [f.freshness_lifetime, f.corrected_initial_age, f.response_time],
            "head": entry.head.decode("latin-1"),
            "etag": entry.etag,
            "last_modified": entry.last_modified,
        },
        separators=(",", ":"),
    ).encode()


def decode(meta: dict[str, Any], body: bytes) -> StoredResponse:
    """The stored response whose metadata (decoded JSON) and body these are."""
    fields = {str(k): str(v) for k, v in meta["fields"].items()}
    lifetime, initial_age, response_time = meta["freshness"]
    return StoredResponse(
        key=meta["key"],
        host=meta["host"],
        status=int(meta["status"]),
        reason=meta["reason"],
        headers=[(str(n), str(v)) for n, v in meta["headers"]],
        fields=fields,
        body=body,
        cc=parse_cache_control(fields.get("cache-control")),
        freshness=Freshness(float(lifetime), float(initial_age), float(response_time)),
        vary_names=tuple(meta["vary_names"]),
        vary_key=tuple((str(n), str(v)) for n, v in meta["vary_key"]),
        surrogate_keys=frozenset(meta["tags"]),
        head=meta["head"].encode("latin-1"),
        etag=meta["etag"],
        last_modified=meta["last_modified"],
    )


def read_header(data: bytes, file_size: int) -> tuple[int, int, int, int]:
    """``(meta_len, meta_crc, body_len, body_crc)`` after checking magic and lengths."""
    if len(data) < HEADER.size:
        raise CorruptEntry("short header")
    magic, meta_len, meta_crc, body_len, body_crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptEntry("bad magic")
    if HEADER.size + meta_len + body_len != file_size:
        raise CorruptEntry("length mismatch (torn write?)")
    return meta_len, meta_crc, body_len, body_crc
