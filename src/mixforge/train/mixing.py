"""Where the recipe meets the mixer: the run's mixing config -> the per-source schedule, the general sources'
records, and their held-out files for the forgetting curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixforge.mix.catalog import Source
from mixforge.mix.config import DataMixingConfig, default_mixing_config


def mixing_config(mixing: DataMixingConfig | dict[str, Any] | None, *, enabled: bool, model: str,
                  method: str) -> DataMixingConfig:
    """The validated mixing config of a run: the user's, the defaults, or 100% domain data when mixing is off."""
    if not enabled:
        return DataMixingConfig.from_dict({"customer_data_percent": 100, "general_data": "none"})
    if mixing is None:
        return default_mixing_config(model, method)
    return mixing if isinstance(mixing, DataMixingConfig) else DataMixingConfig.from_dict(mixing)


def heldout_path(source: Source) -> str | None:
    """An embedded or file source's held-out pool: `heldout.jsonl` beside its `train.jsonl`, when present."""
    if source.kind == "hub":
        return None
    if source.kind == "self":  # generated records have no held-out pool: watch the bundled one of the category
        from mixforge.mix.catalog import embedded_sources

        shipped = embedded_sources().get(source.category)
        return heldout_path(shipped) if shipped is not None else None
    candidate = Path(source.location).with_name("heldout.jsonl")
    return str(candidate) if candidate.is_file() and candidate != Path(source.location) else None


def generate_self_sources(mix: DataMixingConfig, sources: dict[str, Source], *, model: str, device: str | None,
                          main: bool = True, show_progress: bool = True) -> tuple[dict[str, Source], dict | None]:
    """Fill the self-generated sources (general_data: self, or sources of kind self) with the model's own
    records: generated now, or reused from the replay cache (keyed by the model's fingerprint and the
    settings). Returns the sources with their files, and what the mixture manifest records (None when no
    source is self-generated). Under torchrun, rank 0 generates while the others wait, then read the cache."""
    counts = mix.self_replay_counts()
    if not counts or not any(src.kind == "self" for src in sources.values()):
        return sources, None
    from mixforge.mix.catalog import with_generated_files
    from mixforge.replay.generate import generate_replay

    s = mix.self_replay
    assert s is not None  # filled in by the config's validator whenever a source is self-generated

    def generate():
        return generate_replay(model, n=sum(counts.values()), mode=s.mode, prompts=s.prompts,
                               mapping=s.mapping or None, categories=counts, max_new_tokens=s.max_new_tokens,
                               temperature=s.temperature, top_p=s.top_p, seed=s.seed, batch_size=s.batch_size,
                               device=device, backend=s.backend, show_progress=show_progress and main)

    if main:
        result = generate()
    _barrier()
    if not main:
        result = generate()  # finished by rank 0: found in the cache
    empty = [c for c, stats in result.per_category.items() if not stats["kept"]]
    if empty:
        from mixforge.errors import ConfigError

        raise ConfigError(f"self-replay kept no record for {', '.join(empty)} (dropped: {result.dropped})",
                          hint=f"see {result.manifest}; a larger self_replay.max_new_tokens helps when they "
                               "were truncated")
    files = {c: str(p) for c, p in result.files.items()}
    record = {"cache_key": result.cache_key, "generator_fingerprint": result.fingerprint, "mode": s.mode,
              "kept": result.kept, "dropped": result.dropped, "attempted": result.attempted,
              "counts": counts, "files": files, "manifest": str(result.manifest), "reused": result.reused}
    return with_generated_files(sources, files, fmt=result.record_format), record


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()

