"""Training methods. The core speaks the small closed set `Method`; `TrainingMethod` is the seed-shaped enum."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

Method = Literal["sft_lora", "sft_full", "cpt", "dpo_lora", "dpo_full"]
METHODS: tuple[str, ...] = ("sft_lora", "sft_full", "cpt", "dpo_lora", "dpo_full")

# Which canonical record each method trains on (see mixforge.data): chat messages, plain text, or preferences.
RecordKind = Literal["messages", "text", "preference"]
RECORD_KIND: dict[str, RecordKind] = {
    "sft_lora": "messages",
    "sft_full": "messages",
    "cpt": "text",
    "dpo_lora": "preference",
    "dpo_full": "preference",
}


class TrainingMethod(StrEnum):
    """The seed's spelling: `TrainingMethod.SFT_LORA == "sft_lora"`, so either form is accepted anywhere."""

    SFT_LORA = "sft_lora"
    SFT_FULL = "sft_full"
    CPT = "cpt"
    DPO_LORA = "dpo_lora"
    DPO_FULL = "dpo_full"


def parse_method(method: str | TrainingMethod) -> Method:
    """Normalize 'SFT_LORA', 'sft-lora', TrainingMethod.SFT_LORA ... to 'sft_lora'; unknown names are an error."""
    from mixforge.errors import ConfigError

    name = str(method.value if isinstance(method, TrainingMethod) else method).strip().lower().replace("-", "_")
    if name not in METHODS:
        raise ConfigError(f"method: unknown training method {method!r}; choose one of {', '.join(METHODS)}")
    return name  # type: ignore[return-value]


def uses_lora(method: str | TrainingMethod) -> bool:
    return parse_method(method).endswith("_lora")
