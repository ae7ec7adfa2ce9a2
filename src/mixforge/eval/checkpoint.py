"""A checkpoint loaded for evaluation: the model in eval mode (an adapter merged into its base), its tokenizer,
its display name and its content hash. Shared by the evaluator, generation, chat and the harness adapter.

A checkpoint is a hub id, a model directory, or a peft adapter directory (its `adapter_config.json` names
the base) or `model=BASE, adapter=ADAPTER_DIR`. Adapters are merged into the base after loading (same
outputs, faster scoring); the adapter folder is left as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixforge.errors import ModelError
from mixforge.eval.cache import checkpoint_fingerprint


@dataclass
class Checkpoint:
    """A loaded model with its tokenizer, its display name and its content hash."""

    model: Any
    tokenizer: Any
    name: str
    fingerprint: str


def split_adapter(model: str, adapter: str | None) -> tuple[str, str | None]:
    """(base, adapter): a directory holding `adapter_config.json` is an adapter whose config names its base."""
    if adapter is None and (Path(model).expanduser() / "adapter_config.json").is_file():
        config = json.loads((Path(model).expanduser() / "adapter_config.json").read_text(encoding="utf-8"))
        base = config.get("base_model_name_or_path")
        if not base:
            raise ModelError(f"{model}/adapter_config.json names no base model",
                             hint="pass the base explicitly: model=BASE, adapter=ADAPTER_DIR")
        return str(base), str(model)
    return model, adapter


def load_checkpoint(
    model: str,
    *,
    adapter: str | None = None,
    precision: str = "fp32",
    device: str | None = None,
    cache_dir: Path | None = None,
) -> Checkpoint:
    """Load a base, merged or base + adapter checkpoint for evaluation (eval mode, adapter merged)."""
    from mixforge.models.registry import load_model, load_tokenizer

    base, adapter = split_adapter(str(model), adapter)
    fingerprint = checkpoint_fingerprint(base, adapter=adapter, cache_dir=cache_dir)
    loaded = load_model(base, precision=precision, device=device)
    has_own_tokenizer = adapter and (Path(adapter) / "tokenizer_config.json").is_file()
    tokenizer = load_tokenizer(adapter if has_own_tokenizer else base)
    if adapter:
        from peft import PeftModel

        try:
            loaded = PeftModel.from_pretrained(loaded, adapter).merge_and_unload()
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load adapter {adapter!r}: {exc}".splitlines()[0][:400]) from exc
    loaded.eval()
    return Checkpoint(loaded, tokenizer, str(model), fingerprint)
