"""The mixture manifest: what a run mixed, written with the run and checked when it resumes.

    write_manifest(run_dir, sampler, config=mixing_config)     # at the start of a run (rank 0)
    check_manifest(run_dir, sampler, config=mixing_config)     # on resume: ConfigError saying what changed
    check_manifest(run_dir, sampler, force=True)               # ... or accept the change and get the list back

Files (both written atomically: temp file, then rename):
- `mix_manifest.json`: seed, unit, global batch, per source its content fingerprint, size, token totals and
  location, the exact shares per schedule stage (fractions as "p/q"), and the mixing config as written;
- `mix_index.npz`: each source's per-record token counts and rows, so `mixforge mix trace` can rebuild the
  sequence of any step without the data (the sequence is a pure function of these files).

The world size is recorded but may change on resume: the global sequence does not depend on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mixforge.errors import ConfigError
from mixforge.io.atomic import AtomicFile, write_text_atomic
from mixforge.mix.sampler import MixSampler, SourceIndex
from mixforge.mix.weights import Schedule

MANIFEST_FILE = "mix_manifest.json"
INDEX_FILE = "mix_index.npz"
MANIFEST_VERSION = 1


def build_manifest(sampler: MixSampler, *, config: Any = None, self_replay: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of a sampler as a JSON-ready dict. `config` is a DataMixingConfig or a plain dict;
    `self_replay` what generated the self-replay sources (generator fingerprint, cache key, files)."""
    if config is not None and hasattr(config, "to_dict"):
        config = config.to_dict()
    return {
        "version": MANIFEST_VERSION,
        "seed": sampler.seed,
        "unit": sampler.unit,
        "global_batch_size": sampler.global_batch_size,
        "world_size": sampler.world_size,
        "total_steps": sampler.total_steps,
        "domain": sampler.domain,
        "schedule": sampler.schedule.to_json(),
        "sources": {
            name: {
                "fingerprint": index.content_fingerprint(),
                "num_records": index.num_records,
                "tokens_total": None if index.tokens is None else int(index.tokens.sum()),
                "loss_tokens_total": None if index.loss_tokens is None else int(index.loss_tokens.sum()),
                "location": index.location,
            }
            for name, index in sampler.sources.items()
        },
        "config": config,
        **({"self_replay": dict(self_replay)} if self_replay is not None else {}),
    }


def write_manifest(run_dir: str | Path, sampler: MixSampler, *, config: Any = None,
                   self_replay: Mapping[str, Any] | None = None) -> Path:
    """Write mix_index.npz, then mix_manifest.json (last, so a manifest always has its index)."""
    run_dir = Path(run_dir)
    arrays: dict[str, np.ndarray] = {}
    for i, index in enumerate(sampler.sources.values()):
        for field in ("tokens", "loss_tokens", "rows"):
            arr = getattr(index, field)
            if arr is not None:
                arrays[f"{i}.{field}"] = arr
    with AtomicFile(run_dir / INDEX_FILE) as f:
        np.savez_compressed(f.handle, **arrays)
    manifest = build_manifest(sampler, config=config, self_replay=self_replay)
    write_text_atomic(run_dir / MANIFEST_FILE, json.dumps(manifest, indent=2, ensure_ascii=False))
    return run_dir / MANIFEST_FILE


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir)
    path = path / MANIFEST_FILE if path.is_dir() else path
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no mixture manifest", hint="was the run started by mixforge?") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: mixture manifest is not valid JSON ({exc.msg})") from None


def compare_manifests(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What changed from `saved` to `current`, one readable line per change (empty: the same mix)."""
    changes = []
    for key in ("seed", "unit", "global_batch_size", "domain"):
        if saved.get(key) != current.get(key):
            changes.append(f"{key} changed from {saved.get(key)!r} to {current.get(key)!r}")
    old_src, new_src = saved.get("sources", {}), current.get("sources", {})
    for name in sorted(set(old_src) - set(new_src)):
        changes.append(f"source {name!r} was removed")
    for name in sorted(set(new_src) - set(old_src)):
        changes.append(f"source {name!r} was added")
    for name in sorted(set(old_src) & set(new_src)):
        a, b = old_src[name], new_src[name]
        diffs = [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in ("num_records", "tokens_total", "loss_tokens_total")
                 if a.get(k) != b.get(k)]
        if a.get("fingerprint") != b.get("fingerprint"):
            diffs.insert(0, "content fingerprint differs")
        if diffs:
            changes.append(f"source {name!r} changed: {', '.join(diffs)}")
    old_sched, new_sched = saved.get("schedule", []), current.get("schedule", [])
    if old_sched != new_sched:
        old_steps, new_steps = [p[0] for p in old_sched], [p[0] for p in new_sched]
        if old_steps != new_steps:
            changes.append(f"schedule steps changed from {old_steps} to {new_steps}")
        for (step, a), (_, b) in zip(old_sched, new_sched, strict=False):
            for name in sorted(set(a) | set(b)):
                if a.get(name, "0") != b.get(name, "0"):
                    changes.append(f"share of {name!r} from step {step} changed from {a.get(name, '0')} to "
                                   f"{b.get(name, '0')}")
    old_gen, new_gen = (saved.get("self_replay") or {}).get("cache_key"), (current.get("self_replay") or {}).get("cache_key")
    if old_gen != new_gen:
        changes.append(f"self-generated replay changed: cache key {old_gen!r} -> {new_gen!r}")
    if saved.get("config") is not None and current.get("config") is not None and saved["config"] != current["config"]:
        keys = sorted(k for k in set(saved["config"]) | set(current["config"])
                      if saved["config"].get(k) != current["config"].get(k))
        changes.append(f"mixing config changed in: {', '.join(keys)}")
    return changes


def check_manifest(run_dir: str | Path, sampler: MixSampler, *, config: Any = None, force: bool = False,
                   self_replay: Mapping[str, Any] | None = None) -> list[str]:
    """Compare the run's saved manifest with the mix about to resume. A change raises a ConfigError listing
    every change, unless `force` (then the changes are returned for the caller to log)."""
    changes = compare_manifests(read_manifest(run_dir), build_manifest(sampler, config=config, self_replay=self_replay))
    if changes and not force:
        raise ConfigError([f"the mix differs from the run's manifest: {c}" for c in changes],
                          hint="resume with the same data and mixing config, or force it (--force-mix)")
    return changes


def sampler_from_manifest(run_dir: str | Path, *, world_size: int = 1, rank: int = 0) -> MixSampler:
    """Rebuild a run's sampler from its manifest and index alone (no data needed): for tracing."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    try:
        arrays = np.load(run_dir / INDEX_FILE)
    except FileNotFoundError:
        raise ConfigError(f"{run_dir / INDEX_FILE}: missing (written beside the manifest)") from None
    sources = {}
    for i, (name, meta) in enumerate(manifest["sources"].items()):
        def get(field: str, i: int = i) -> np.ndarray | None:
            key = f"{i}.{field}"
            return arrays[key] if key in arrays.files else None
        sources[name] = SourceIndex(meta["num_records"], get("tokens"), get("loss_tokens"), meta["fingerprint"],
                                    meta.get("location", ""), get("rows"))
    return MixSampler(sources, Schedule.from_json(manifest["schedule"]), global_batch_size=manifest["global_batch_size"],
                      world_size=world_size, rank=rank, seed=manifest["seed"], unit=manifest["unit"],
                      max_steps=manifest.get("total_steps"), domain=manifest.get("domain", "customer"))
