"""Helpers of the runtime tests (a module name of its own: the test folders are not packages)."""

from __future__ import annotations

import json
import time
from pathlib import Path

# seconds: the bound of every wait in these tests, a net against a hang and never a speed requirement (the
# suite must pass while other processes keep the cores busy; a waiting test also fails as soon as its job ends)
PATIENCE = 900


def write_jsonl(path: Path, rows) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def run_config(model_dir, data: str, out, *, method: str = "sft_full", **over):
    """A small mixed run: half domain, half embedded general math, tracking off."""
    from mixforge.config import RunConfig, parse_overrides

    overrides = {"max_steps": 6, "global_batch_size": 8, "micro_batch_size": 4, "learning_rate": 1e-2,
                 "lora_rank": 8, **over}
    return RunConfig(model=str(model_dir), method=method, data_path=data, output_path=str(out),
                     job_name="toy", data_mixing_enabled=True,
                     mixing={"customer_data_percent": 50, "general_data": "embedded", "categories": {"math": 100}},
                     overrides=parse_overrides(overrides), tracking={"enabled": False})


def metric_rows(out) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def losses(out) -> list[float]:
    return [r["loss"] for r in metric_rows(out) if "loss" in r]


def rank_batches(out) -> dict[int, dict[int, list[tuple[str, int]]]]:
    """rank -> step -> the records that rank trained (written by record_batches_entry)."""
    ranks = {}
    for path in sorted((Path(out) / "batches").glob("rank-*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        ranks[int(path.stem.split("-")[1])] = {r["step"]: [tuple(x) for x in r["records"]] for r in rows}
    return ranks


def wait_for(predicate, *, timeout: float, what: str, job=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if job is not None and job.status not in ("queued", "running"):
            raise AssertionError(f"job ended ({job.status}) while waiting for {what}:\n{job.logs(30)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f":\n{job.logs(30)}" if job else ""))
        time.sleep(0.05)
