"""Content fingerprints (SHA-256): of a file's bytes, of a stream of records, of a JSON value. The mix
manifest, the token stores, the prepare manifest and the evaluation cache all compare these, so one record
or file hashes the same everywhere.

    file_sha256("prepared/train.jsonl")          # hex digest of the bytes (any fsspec path)
    records_sha256(records)                       # (hex digest of the records' canonical JSON lines, count)
    json_sha256({"task": ..., "data": ...})       # hex digest of canonical (key-sorted) JSON
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any


def canonical_record(record: Mapping[str, Any]) -> bytes:
    """The bytes a record's fingerprint covers: its JSON with sorted keys (non-ASCII kept), and a newline."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def records_sha256(records: Iterable[Mapping[str, Any]]) -> tuple[str, int]:
    """The hex SHA-256 over the records' canonical JSON lines, in order, and how many there were."""
    h, n = hashlib.sha256(), 0
    for record in records:
        h.update(canonical_record(record))
        n += 1
    return h.hexdigest(), n


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file's bytes, read in 4 MiB blocks; `path` may be any fsspec URL."""
    text = os.fspath(path)
    if "://" not in text:
        with open(text, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    import fsspec

    with fsspec.open(text, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def json_sha256(value: Any) -> str:
    """The hex SHA-256 of `value` as key-sorted JSON (a cache key that does not depend on dict order)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
