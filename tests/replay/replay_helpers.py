"""Helpers of the replay tests (a module of its own: `conftest` names collide across test folders)."""

from __future__ import annotations

import json
from pathlib import Path

BASE = str(Path(__file__).resolve().parents[2] / "src" / "mixforge" / "assets" / "models" / "mixforge-tiny-base")


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
