"""Checkpoints: atomic folders `step-000123/` holding everything a resume needs.

One unsharded copy (one process, or DDP's rank 0):
    weights      model.safetensors, or adapter_model.safetensors (+ trainable full modules) for LoRA
    optimizer.pt optimizer and scheduler state (tensors and numbers only; loaded with weights_only=True)
    state.json   step, mixer state, RNG states, tokens seen, the resolved config
FSDP shards (written by every rank through torch.distributed.checkpoint; see mixforge.train.distributed):
    sharded/     the DCP folder: model and optimizer shards, re-sharded on load for any number of processes
    trainer.pt   scheduler and rank 0's RNG state;  rng-00001.pt ...  each rank's RNG state
    state.json   as above

A checkpoint is written to a temporary folder and renamed into place, and `state.json` is written last, so a
folder without it is incomplete and ignored. Only the newest `keep` checkpoints stay.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixforge.io.atomic import atomic_directory

_NAME = re.compile(r"^step-(\d{6,})$")
STATE_FILE = "state.json"  # written last: a folder without it is incomplete
TRAINER_FILE = "trainer.pt"


def folder_name(step: int) -> str:
    return f"step-{step:06d}"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as plain numbers and tensors (so torch.load(weights_only=True) reads them)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.random.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.random.set_rng_state(state["torch"])


def save_checkpoint(
    root: str | os.PathLike[str],
    *,
    step: int,
    model,
    optimizer: torch.optim.Optimizer,
    scheduler,
    state: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint `step` under `root` atomically and prune all but the newest `keep`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / folder_name(step)
    with atomic_directory(final) as tmp:  # state.json is written last: a folder without it is incomplete
        model.save_pretrained(tmp, safe_serialization=True)
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
            tmp / "optimizer.pt",
        )
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=1, default=str))
    prune(root, keep)
    return final


def prune(root: str | os.PathLike[str], keep: int) -> None:
    """Remove all but the newest `keep` complete checkpoints."""
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def list_checkpoints(root: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _NAME.match(p.name) and (p / STATE_FILE).exists()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest_checkpoint(root: str | os.PathLike[str]) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def load_training_state(path: Path, *, optimizer, scheduler) -> dict[str, Any]:
    """Restore optimizer, scheduler and RNG states from a checkpoint; returns its state.json."""
    blob = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    set_rng_state(blob["rng"])
    return json.loads((path / STATE_FILE).read_text())


def load_weights_into(model, path: Path) -> None:
    """Copy a checkpoint's weights (full model or adapter) into an already built model, in place."""
    from safetensors.torch import load_file

    full, adapter = path / "model.safetensors", path / "adapter_model.safetensors"
    if adapter.exists():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(adapter))
    elif full.exists():
        missing, unexpected = model.load_state_dict(load_file(full), strict=False)
        # tied output embeddings are saved once; anything else missing is a real problem
        real = [k for k in missing if not k.endswith("lm_head.weight")]
        if real or unexpected:
            raise RuntimeError(f"checkpoint {path} does not fit the model: missing {real}, unexpected {unexpected}")
    else:
        raise FileNotFoundError(f"{path} holds no model.safetensors or adapter_model.safetensors")
