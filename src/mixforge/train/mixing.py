"""Where the recipe meets the mixer: the run's mixing config -> the per-source schedule, the general sources'
records, and their held-out files for the forgetting curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixforge.mix.catalog import Source, read_source
from mixforge.mix.config import DataMixingConfig, default_mixing_config


def mixing_config(mixing: dict[str, Any] | None, *, enabled: bool, model: str, method: str) -> DataMixingConfig:
    """The validated mixing config of a run: the user's, the defaults, or 100% domain data when mixing is off."""
    if not enabled:
        return DataMixingConfig.from_dict({"customer_data_percent": 100, "general_data": "none"})
    if mixing is None:
        return default_mixing_config(model, method)
    return DataMixingConfig.from_dict(mixing)


def heldout_path(source: Source) -> str | None:
    """An embedded or file source's held-out pool: `heldout.jsonl` beside its `train.jsonl`, when present."""
    if source.kind == "hub":
        return None
    candidate = Path(source.location).with_name("heldout.jsonl")
    return str(candidate) if candidate.is_file() and candidate != Path(source.location) else None


def read_general(sources: dict[str, Source]) -> dict[str, list[dict]]:
    return {name: list(read_source(src)) for name, src in sources.items()}
