"""Write a Hugging Face model directory atomically: a temporary sibling folder, then one rename, so a crash
never leaves a half-written model where a complete one is expected."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def save_model_dir(model, tokenizer, out: str | os.PathLike[str]) -> Path:
    """`model.save_pretrained` (safetensors) and `tokenizer.save_pretrained` into `out`, replacing it whole."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
