"""Save a model directory atomically (`mixforge.io.atomic.atomic_directory`): a crash never leaves a
half-written model where a complete one is expected."""

from __future__ import annotations

import os
from pathlib import Path

from mixforge.io.atomic import atomic_directory


def save_model_dir(model, tokenizer, out: str | os.PathLike[str]) -> Path:
    """`model.save_pretrained` (safetensors) and `tokenizer.save_pretrained` into `out`, replacing it whole."""
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(out)
