"""Write a directory atomically: fill a temporary sibling folder, then rename it into place in one step, so a
crash never leaves a half-written model or checkpoint where a complete one is expected."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_directory(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside `out`; on success it replaces `out` whole, on failure it is removed."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_model_dir(model, tokenizer, out: str | os.PathLike[str]) -> Path:
    """`model.save_pretrained` (safetensors) and `tokenizer.save_pretrained` into `out`, replacing it whole."""
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(out)
