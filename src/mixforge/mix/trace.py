"""Batch tracing: which records optimizer step K of a run used, with their source, file and row.

The sequence is a pure function of the manifest and the seed, so a trace needs only the run's
`mix_manifest.json` and `mix_index.npz` (no data, no checkpoint):

    rows = trace_step("runs/my-run", step=120)          # step K is 1-based: the number the trainer logs

The rank column says which process trained each record under the run's world size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from mixforge.errors import ConfigError
from mixforge.mix.manifest import read_manifest, sampler_from_manifest


@dataclass(frozen=True)
class TraceRow:
    position: int  # place in the global batch (0-based)
    rank: int  # which process trained it
    source: str
    index: int  # record index within the source (0-based)
    location: str  # the source's file or hub id
    row: int | None  # 1-based row in that file, when known
    tokens: int | None
    loss_tokens: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def trace_step(run_dir: str | Path, step: int, *, world_size: int | None = None) -> list[TraceRow]:
    """The records of optimizer step `step` (1-based) of the run in `run_dir`, in global-batch order."""
    if step < 1:
        raise ConfigError(f"--step: optimizer steps count from 1, got {step}")
    manifest = read_manifest(run_dir)
    total = manifest.get("total_steps")
    if total is not None and step > total:
        raise ConfigError(f"--step: the run has {total} optimizer steps, got {step}")
    world = world_size or int(manifest.get("world_size", 1))
    sampler = sampler_from_manifest(run_dir, world_size=world, rank=0)
    sampler.skip_to(step - 1)
    sampler.next_batch()
    batch = sampler.last_global
    rows = []
    for pos, ((name, idx), rank) in enumerate(zip(batch, sampler.ranks_of(batch), strict=True)):
        index = sampler.sources[name]
        rows.append(TraceRow(
            position=pos, rank=rank, source=name, index=idx, location=index.location,
            row=int(index.rows[idx]) if index.rows is not None else None,
            tokens=int(index.tokens[idx]) if index.tokens is not None else None,
            loss_tokens=int(index.loss_tokens[idx]) if index.loss_tokens is not None else None))
    return rows
