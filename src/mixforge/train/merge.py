"""LoRA adapter + its base model -> one standalone Hugging Face model directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mixforge.errors import ModelError
from mixforge.models.save import save_model_dir


def merge_adapter(adapter: str | os.PathLike[str], out: str | os.PathLike[str], *,
                  trust_remote_code: bool = False) -> Path:
    from peft import PeftModel

    from mixforge.models.registry import load_model, load_tokenizer

    adapter, out = Path(adapter), Path(out)
    config_file = adapter / "adapter_config.json"
    if not config_file.exists():
        raise ModelError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json)")
    base = json.loads(config_file.read_text())["base_model_name_or_path"]
    model = PeftModel.from_pretrained(load_model(base, trust_remote_code=trust_remote_code), adapter)
    merged = model.merge_and_unload()
    tokenizer = load_tokenizer(str(adapter) if (adapter / "tokenizer_config.json").exists() else base)
    return save_model_dir(merged, tokenizer, out)
