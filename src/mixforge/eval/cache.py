"""Results cached per (checkpoint hash, task, settings), so a report never evaluates the same thing twice.

The checkpoint hash is the SHA-256 over the names and contents of a model directory's files (weights,
config, tokenizer; an adapter directory's files on top of its base's). File digests are memoized by
(path, size, modification time), so a multi-gigabyte checkpoint is read once. A hub id that is not a local
directory is hashed by its name (and its local snapshot, when the Hugging Face cache has one).

The task key hashes the task's settings, the contents of its data, shots and labels files, and
`CACHE_VERSION` (bumped whenever scoring changes). Entries live under `cache_dir` (default
`$MIXFORGE_HOME/eval_cache`), one JSON file each.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mixforge.eval.tasks import TaskResult
from mixforge.fingerprint import file_sha256, json_sha256
from mixforge.io.atomic import write_json_atomic

CACHE_VERSION = "1"
# files that define a checkpoint's behaviour (anything else in the folder, e.g. logs, is ignored)
_CHECKPOINT_SUFFIXES = {".safetensors", ".bin", ".json", ".model", ".txt", ".jinja", ".tiktoken", ".py"}
_SKIP_NAMES = {"metrics.jsonl", "mixture_manifest.json", "mix_manifest.json", "trainer_state.json", "training_args.bin"}


def default_cache_dir() -> Path:
    from mixforge.models.registry import mixforge_home

    return mixforge_home() / "eval_cache"


class _DigestMemo:
    """sha256 of files, remembered by (absolute path, size, mtime_ns) in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.table: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            self.table = {}
        self.dirty = False

    def digest(self, file: Path) -> str:
        st = file.stat()
        key = f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in self.table:
            self.table[key] = file_sha256(file)
            self.dirty = True
        return self.table[key]

    def save(self) -> None:
        if self.dirty:
            write_json_atomic(self.path, self.table)
            self.dirty = False


def _dir_digest(folder: Path, memo: _DigestMemo) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix in _CHECKPOINT_SUFFIXES and p.name not in _SKIP_NAMES)
    for f in files:
        h.update(f"{f.name}\0{memo.digest(f)}\n".encode())
    return h.hexdigest()


def checkpoint_fingerprint(model: str, *, adapter: str | None = None, cache_dir: Path | None = None) -> str:
    """A stable hash of what a checkpoint computes (see the module docstring)."""
    from mixforge.models.registry import resolve

    memo = _DigestMemo((cache_dir or default_cache_dir()) / "file_digests.json")
    parts = []
    for name in (model, adapter):
        if name is None:
            continue
        local = Path(str(name)).expanduser()
        folder = local if local.is_dir() else Path(resolve(str(name)))
        parts.append(_dir_digest(folder, memo) if folder.is_dir() else f"hub:{name}")
    memo.save()
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _file_digest(path: str | None) -> str | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        return f"name:{path}"  # a hub dataset id
    return file_sha256(p)


def task_key(task, *, checkpoint: str, settings: dict[str, Any] | None = None) -> str:
    """The cache key of running `task` (an EvalTask) on the checkpoint with hash `checkpoint`."""
    labels = task.labels if isinstance(task.labels, str) else None
    payload = {
        "version": CACHE_VERSION,
        "checkpoint": checkpoint,
        "task": task.settings(),
        "data": _file_digest(task.path),
        "shots_data": _file_digest(task.shots_path),
        "labels_file": _file_digest(labels),
        "settings": settings or {},
    }
    return json_sha256(payload)[:32]


class ResultCache:
    """TaskResult JSON files under `root`, one per key."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.root / "results" / f"{key}.json"

    def get(self, key: str):
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            result = TaskResult.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError, KeyError):
            return None  # a damaged entry is recomputed, then overwritten
        result.cached = True
        return result

    def put(self, key: str, result) -> Path:
        return write_json_atomic(self._path(key), result.to_dict())
