"""Where a self-generated replay set lives, and when an existing one can be reused.

The cache key hashes what decides the records: the generator's fingerprint (the SHA-256 of its config,
weights and tokenizer files, and of the adapter's; `mixforge.eval.cache.checkpoint_fingerprint`), the mode,
the prompts (their content, not their path), the per-category counts, every generation and filter setting,
the backend and the seed. Any change gives a new key, so a stale set is never reused; the same key finds the
finished set (reused as it is) or an interrupted one (resumed from its last complete shard).

    key = cache_key(fingerprint=..., mode="prompts", prompts_hash=..., settings={...}, seed=0)
    out = default_dir(key)        # $MIXFORGE_HOME/replay/<key>, when the caller names no folder
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mixforge.fingerprint import json_sha256

CACHE_VERSION = "1"  # bumped whenever generation or filtering changes what a key produces


def prompts_hash(pools: dict[str, list[list[dict[str, str]]]] | None) -> str:
    """SHA-256 of the prompt pools (category -> list of prompt turns), or of nothing (magpie, free)."""
    payload = json.dumps(pools or {}, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(payload).hexdigest()


def cache_key(*, fingerprint: str, mode: str, prompts_hash: str, settings: dict[str, Any], seed: int) -> str:
    """The key of one generation (see the module docstring)."""
    payload = {"version": CACHE_VERSION, "generator": fingerprint, "mode": mode, "prompts": prompts_hash,
               "settings": settings, "seed": seed}
    return json_sha256(payload)[:24]


def default_dir(key: str) -> Path:
    from mixforge.models.registry import mixforge_home

    return mixforge_home() / "replay" / key
