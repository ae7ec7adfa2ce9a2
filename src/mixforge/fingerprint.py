"""Content fingerprints (SHA-256): of a file's bytes, of a stream of records, of a JSON value. The mix
manifest, the token stores, the prepare manifest and the evaluation cache all compare these, so one record
or file hashes the same everywhere.

    file_sha256("prepared/train.jsonl")          # hex digest of the bytes (any fsspec path)
    file_sha256_memo("prepared/train.jsonl", memo_dir)   # the same, remembered while the file is unchanged
    records_sha256(records)                       # (hex digest of the records' canonical JSON lines, count)
    json_sha256({"task": ..., "data": ...})       # hex digest of canonical (key-sorted) JSON
"""

from __future__ import annotations

import hashlib
import json
import os
import time
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


RACY_S = 2.0  # a file changed this recently is not remembered: a second write in the same timestamp tick could
#               leave its stat unchanged (git's "racy clean" rule)


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def file_sha256_memo(path: str | os.PathLike[str], memo_dir: str | os.PathLike[str]) -> str:
    """`file_sha256` of a local file, remembered in `memo_dir` so an unchanged 4 GB file is hashed once.

    The rule: a remembered digest is used only while the file's device, inode, size, mtime and ctime (ns) are
    all what they were when it was hashed. Any write changes ctime, and ctime cannot be set back (`touch -d`
    and `os.utime` change it too), so a changed file is always hashed again. A file whose stat changed while it
    was hashed, or that was written less than RACY_S seconds before, is hashed but not remembered."""
    real = os.path.realpath(os.fspath(path))
    memo = os.path.join(os.fspath(memo_dir), hashlib.sha256(real.encode()).hexdigest()[:32] + ".json")
    before = os.stat(real)
    try:
        with open(memo, encoding="utf-8") as fh:
            known = json.load(fh)
        if known["path"] == real and known["stat"] == _identity(before):
            return known["sha256"]
    except (OSError, ValueError, KeyError, TypeError):  # no memo yet, or an unreadable one: hash the file
        pass
    digest = file_sha256(real)
    after = os.stat(real)
    newest = max(after.st_mtime_ns, after.st_ctime_ns) / 1e9
    if _identity(after) == _identity(before) and time.time() - newest >= RACY_S:
        from mixforge.io.atomic import write_text_atomic

        os.makedirs(os.fspath(memo_dir), exist_ok=True)
        write_text_atomic(memo, json.dumps({"path": real, "stat": _identity(after), "sha256": digest}))
    return digest
