"""One trial of a mixture search: the run config with a changed mix, trained on the configured runtime.

    plan = plan_trial(base_cfg, customer_percent=75, categories=None, steps=200, search_dir=out, ...)
    train_trials([plan, ...], show_progress=True)      # trains what is not trained yet; returns what it did
    signals = training_signals(plan.run_dir)          # last val loss per source, KL to base, tokens, steps

A trial lives in `<search dir>/trials/<name>/`: `run/` is the training output (checkpoints, final model,
metrics.jsonl, mix manifest), `trained.json` is written last when training succeeded, `trial.json` when it
was evaluated too. Its key hashes everything that decides the trained weights (model, method, data files,
mix, training settings with the step budget), so a rerun reuses a trained trial and a changed setting trains
a new one. A trial killed mid-way continues from its newest checkpoint (with `save_every`) or starts again.

Where it trains: `runtime: {kind: local}` trains in this process, one trial after another (the CPU or GPU is
one machine's); other runtimes get each trial as a job through their launcher (`mixforge.runtime`), several
at once where the runtime spreads them over a cluster (Ray, Kubernetes, Slurm).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixforge.config import RunConfig
from mixforge.errors import ConfigError, MixforgeError
from mixforge.fingerprint import json_sha256
from mixforge.mix.config import DataMixingConfig

TRAINED_FILE = "trained.json"
TRIAL_FILE = "trial.json"
# runtimes whose jobs share this machine: trials run one after another there
SERIAL_RUNTIMES = ("local", "torchrun")


@dataclass(frozen=True)
class TrialPlan:
    """What one trial trains: its name, key, mix and resolved run config."""

    name: str
    key: str
    customer_data_percent: float
    categories: dict[str, float]  # percent of the general part per category ({} when domain only)
    custom_weights: bool  # categories chosen by the search (else the config's own)
    steps: int | None  # optimizer steps (None: the config's own budget, e.g. max_epochs)
    config: RunConfig
    directory: Path

    @property
    def run_dir(self) -> Path:
        return self.directory / "run"

    @property
    def mix(self) -> dict[str, Any]:
        return {"customer_data_percent": self.customer_data_percent, "categories": dict(self.categories)}


def trial_mixing(base: RunConfig, *, customer_percent: float,
                 categories: Mapping[str, float] | None = None) -> DataMixingConfig | None:
    """The base config's mix with another customer share (and category percents); None for 100% domain."""
    from mixforge.train.mixing import mixing_config

    if customer_percent >= 100:
        return None
    mix = mixing_config(base.mixing, enabled=True, model=base.model, method=base.method).to_dict()
    mix["customer_data_percent"] = float(customer_percent)
    if categories is not None:
        mix["categories"] = dict(categories)
    if mix["general_data"] == "none" and not mix.get("sources"):
        raise ConfigError("mixing: the config mixes in no general data (general_data: none, no sources), so "
                          "there is nothing to search over", hint="set mixing.general_data: embedded or hub")
    return DataMixingConfig.from_dict(mix)


def _file_stamp(path: str | None) -> list[Any] | None:
    """(path, size, mtime_ns): a re-written data file trains new trials; an untouched one reuses them."""
    if not path:
        return None
    p = Path(path)
    return [str(p), p.stat().st_size, p.stat().st_mtime_ns] if p.is_file() else [str(p)]


def trial_key(cfg: RunConfig) -> str:
    """A hash of what decides a trial's weights (not where it writes, how it is tracked or where it runs)."""
    decided = cfg.model_dump(mode="json", exclude={"output_path", "job_name", "tracking", "runtime"})
    decided["data_path"], decided["validation_path"] = _file_stamp(cfg.data_path), _file_stamp(cfg.validation_path)
    return json_sha256(decided)[:16]


def trial_name(customer_percent: float, categories: Mapping[str, float] | None, key: str, *,
               prefix: str = "") -> str:
    name = f"{prefix}customer-{customer_percent:g}"
    return f"{name}-w{key[:6]}" if categories is not None else name


def plan_trial(base: RunConfig, *, customer_percent: float, categories: Mapping[str, float] | None = None,
               steps: int | None, search_dir: Path, tracking_uri: str, prefix: str = "") -> TrialPlan:
    """The run config of one trial: the base with this mix and this budget, writing under `search_dir`."""
    from mixforge.config import parse_run_config

    if categories is not None and customer_percent < 100:
        own = trial_mixing(base, customer_percent=customer_percent).categories
        if {c: v for c, v in own.items() if v} == {c: float(v) for c, v in categories.items() if v}:
            categories = None  # the config's own weights: the same trial as the sweep's, reused by name and key
    mix = trial_mixing(base, customer_percent=customer_percent, categories=categories)
    data = base.model_dump(mode="json")  # rebuilt through validation: the trial's config is checked like any
    data |= {"mixing": mix.to_dict() if mix else None, "data_mixing_enabled": mix is not None}
    if steps is not None:
        data["overrides"] = {**data["overrides"], "max_steps": steps}
    key = trial_key(parse_run_config(data))
    name = trial_name(customer_percent, categories, key, prefix=prefix)
    directory = Path(search_dir).resolve() / "trials" / name
    data |= {"output_path": str(directory / "run"), "job_name": f"{base.job_name}-{name}",
             "tracking": {"enabled": base.tracking.enabled, "experiment_name": base.tracking.experiment_name,
                          "tracking_uri": tracking_uri, "run_name": name}}
    cfg = parse_run_config(data)
    shown = {} if mix is None else {c: float(v) for c, v in mix.categories.items() if v}
    return TrialPlan(name=name, key=key, customer_data_percent=float(customer_percent), categories=shown,
                     custom_weights=categories is not None, steps=steps, config=cfg, directory=directory)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def trained(plan: TrialPlan) -> dict[str, Any] | None:
    """What training wrote when this trial (with this key) finished; None if it has not."""
    record = read_json(plan.directory / TRAINED_FILE)
    return record if record and record.get("key") == plan.key and Path(record["final_path"]).exists() else None


def _fresh_start(plan: TrialPlan) -> None:
    """A trial with no checkpoint starts from an empty folder (no half-written metrics.jsonl to append to);
    one with a checkpoint is left alone: the recipe resumes from it."""
    from mixforge.train import checkpoint

    if plan.run_dir.exists() and checkpoint.latest_checkpoint(plan.run_dir / "checkpoints") is None:
        shutil.rmtree(plan.run_dir)
    plan.directory.mkdir(parents=True, exist_ok=True)


def _record_trained(plan: TrialPlan, *, final_path: str, seconds: float, mlflow_run_id: str | None,
                    runtime: str) -> dict[str, Any]:
    from mixforge.io.atomic import write_json_atomic

    record = {"name": plan.name, "key": plan.key, "final_path": final_path, "train_seconds": round(seconds, 2),
              "mlflow_run_id": mlflow_run_id, "runtime": runtime, "trained_at": time.time()}
    write_json_atomic(plan.directory / TRAINED_FILE, record)
    return record


def train_trials(plans: Sequence[TrialPlan], *, max_parallel: int | None = None,
                 show_progress: bool = True) -> dict[str, dict[str, Any]]:
    """Train every plan not trained yet; returns {name: trained record} for all plans.

    `runtime.kind: local` trains in this process, one after another. Other runtimes launch each trial as a job
    and wait; up to `max_parallel` at once (default: 1 for local processes, all of them on a cluster)."""
    done = {p.name: r for p in plans if (r := trained(p)) is not None}
    todo = [p for p in plans if p.name not in done]
    for plan in todo:
        _fresh_start(plan)
    kinds = {runtime_spec(p.config)["kind"] for p in todo}
    if kinds <= {"local", "LocalRuntime"}:
        for plan in todo:
            done[plan.name] = _train_in_process(plan, show_progress=show_progress)
        return done
    width = max_parallel or (1 if kinds & set(SERIAL_RUNTIMES) else len(todo))
    for i in range(0, len(todo), width):
        done |= _train_as_jobs(todo[i : i + width])
    return done


def runtime_spec(cfg: RunConfig) -> dict[str, Any]:
    """The config's `runtime:` section as a plain mapping with its kind (local when not set)."""
    spec = cfg.runtime if isinstance(cfg.runtime, Mapping) else cfg.runtime.model_dump(mode="json")
    return {"kind": "local", **spec}


def _train_in_process(plan: TrialPlan, *, show_progress: bool) -> dict[str, Any]:
    from mixforge.train.recipe import run

    started = time.perf_counter()
    result = run(plan.config, show_progress=show_progress)
    if result.status != "succeeded" or not result.final_path:
        raise TrialError(plan.name, f"training ended {result.status} after {result.steps} steps",
                         hint="rerun the same search: finished trials are reused and this one continues")
    (plan.run_dir / "result.json").write_text(json.dumps(result.__dict__, indent=1, default=str))
    return _record_trained(plan, final_path=result.final_path, seconds=time.perf_counter() - started,
                           mlflow_run_id=result.mlflow_run_id, runtime="local (in-process)")


def _train_as_jobs(plans: Sequence[TrialPlan]) -> dict[str, dict[str, Any]]:
    from mixforge.runtime import launch

    jobs = {p.name: launch(p.config) for p in plans}  # each on the runtime its config names
    out = {}
    for plan in plans:
        job = jobs[plan.name]
        status = job.wait()
        result = job.result or {}
        if status != "succeeded" or not result.get("final_path"):
            raise TrialError(plan.name, f"job {job.id} ended {status}: {job.record.message[-400:]}",
                             hint=f"mixforge jobs logs {job.id}")
        record = job.record
        seconds = (record.ended_at or time.time()) - (record.started_at or record.created_at)
        out[plan.name] = _record_trained(plan, final_path=result["final_path"], seconds=seconds,
                                         mlflow_run_id=result.get("mlflow_run_id"), runtime=record.runtime)
    return out


class TrialError(MixforgeError):
    def __init__(self, name: str, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(f"trial {name}: {message}")


def training_signals(run_dir: Path) -> dict[str, Any]:
    """The cheap signals of a finished run from its metrics.jsonl: the last validation loss of every source,
    the last KL(base || tuned) per token, tokens seen and steps done."""
    from mixforge.eval.plots import read_training_metrics

    rows = read_training_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    val_loss: dict[str, float] = {}
    kl = tokens = None
    steps = 0
    for row in rows:  # in step order: later values overwrite earlier ones
        steps = max(steps, int(row["step"]))
        for k, v in row.items():
            if k.startswith("val_loss/"):
                val_loss[k.removeprefix("val_loss/")] = float(v)
        kl = float(row["kl_to_base"]) if "kl_to_base" in row else kl
        tokens = int(row["tokens_seen"]) if "tokens_seen" in row else tokens
    return {"val_loss": val_loss, "kl_to_base": kl, "tokens": tokens, "steps": steps}
