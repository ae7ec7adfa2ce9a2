"""Atomic writes: a file or a folder appears at its path only when complete, so a reader (or a crash) never
meets half of one, and the previous version stays in place until the new one replaces it in one step.

    with AtomicFile("s3://bucket/train.jsonl") as f:   # any fsspec path; committed when the block succeeds
        f.write(b"...")
    write_text_atomic(path, text); write_json_atomic(path, obj)
    with atomic_directory("out/final") as tmp:        # fill `tmp`; it becomes `out/final` whole
        ...

A local file is replaced with `os.replace` (one rename, atomic on POSIX); an object store's file with the
store's own move (its copy overwrites the target in one request), never by deleting the target first.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from mixforge.errors import DataError

PathT = TypeVar("PathT", str, Path)


class AtomicFile:
    """A binary file that appears at `path` only on `commit()`; `abort()` (or an exception in a `with` block)
    removes what was written. `sha256` and `bytes` follow what `write` received."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import fsspec

        self.path = os.fspath(path)
        try:
            self.fs, self.final = fsspec.core.url_to_fs(self.path)
        except ImportError as exc:  # s3fs / gcsfs missing
            raise DataError(f"cannot write: {exc}", path=self.path,
                            hint="pip install 'mixforge[s3]' or 'mixforge[gcs]'") from exc
        self.local = isinstance(self.fs, fsspec.implementations.local.LocalFileSystem)
        parent, _, name = self.final.rpartition("/")
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        self.tmp = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:8]}" if parent else f".{name}.tmp-{uuid.uuid4().hex[:8]}"
        self.handle = open(self.tmp, "xb") if self.local else self.fs.open(self.tmp, "wb")  # noqa: SIM115
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.sha256.update(data)
        self.bytes += len(data)

    def commit(self) -> str:
        """Move the finished file into place (replacing any previous one in one step); returns its sha256."""
        self.handle.close()
        if self.local:
            os.replace(self.tmp, self.final)
        else:
            self.fs.mv(self.tmp, self.final)
        return self.sha256.hexdigest()

    def abort(self) -> None:
        try:
            self.handle.close()
        finally:
            if self.local:
                Path(self.tmp).unlink(missing_ok=True)
            elif self.fs.exists(self.tmp):
                self.fs.rm(self.tmp)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_text_atomic(path: PathT, text: str) -> PathT:
    """`text` (UTF-8) at `path`, atomically; returns `path`."""
    with AtomicFile(path) as f:
        f.write(text.encode("utf-8"))
    return path


def write_json_atomic(path: PathT, data: Any, *, indent: int | None = 1, ensure_ascii: bool = False,
                      default: Any = None) -> PathT:
    """One JSON document (and a newline) at `path`, atomically; returns `path`."""
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=ensure_ascii, default=default) + "\n")


@contextmanager
def atomic_directory(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside `out`; on success it takes the place of `out`, on failure it is removed.

    A non-empty folder cannot be replaced by one rename, so the old one is first renamed aside and deleted
    only once the new one is in place: a crash between the two renames leaves both on disk, never neither."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        replace_directory(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_directory(new: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Put the finished folder `new` (a sibling of `out`) in the place of `out`: the old folder is renamed
    aside, the new one renamed in, then the old one deleted; if the second rename fails the old one goes back.
    (For writers that cannot use `atomic_directory`, e.g. every rank writing its shard into one folder.)"""
    new, out = Path(new), Path(out)
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        if old.exists() and not out.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
