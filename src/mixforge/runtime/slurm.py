"""SlurmRuntime: an sbatch script that runs torchrun on every allocated node, with the same entry point.

    runtime = SlurmRuntime(nodes=4, gpus_per_node=8, partition="gpu", time="24:00:00")
    job = launch(cfg, runtime)       # writes <output>/sbatch.sh, then `sbatch` when Slurm is here

The output folder must be on storage the compute nodes share with this machine (as usual on Slurm clusters):
the script, the run config, the log and `result.json` live there. One task per node runs
`torchrun --nnodes=$SLURM_NNODES --nproc_per_node=G` with a c10d rendezvous on the first node. Slurm sends
SIGTERM `signal_before_end_s` seconds before the time limit (`--signal`), so a run that reaches its limit
checkpoints first; `stop` is `scancel --signal=TERM` (checkpoint, then exit), resume submits the script again.

Without sbatch the script is written and the command to submit it printed; the job stays `queued` until then.
Status comes from `result.json` when the run wrote one, else from `sacct`.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from mixforge.config import RunConfig, SlurmRuntime
from mixforge.errors import ConfigError
from mixforge.runtime.jobs import Job, JobRecord, JobRegistry, log_tail, new_job_id, read_result, register

# sacct job state -> our status
STATES = {"PENDING": "queued", "REQUEUED": "queued", "CONFIGURING": "queued", "RUNNING": "running",
          "COMPLETING": "running", "SUSPENDED": "running", "COMPLETED": "succeeded", "CANCELLED": "stopped",
          "FAILED": "failed", "TIMEOUT": "failed", "NODE_FAIL": "failed", "OUT_OF_MEMORY": "failed",
          "PREEMPTED": "stopped", "BOOT_FAIL": "failed", "DEADLINE": "failed"}


def render(runtime: SlurmRuntime, cfg: RunConfig, job_id: str, *, config_path: str, log_path: str) -> str:
    """The sbatch script."""
    q = shlex.quote
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", cfg.job_name)[:48]
    lines = ["#!/bin/bash", f"#SBATCH --job-name=mixforge-{name}",
             f"#SBATCH --nodes={runtime.nodes}", "#SBATCH --ntasks-per-node=1",
             f"#SBATCH --cpus-per-task={runtime.cpus_per_task}", f"#SBATCH --time={runtime.time}",
             f"#SBATCH --output={log_path}", "#SBATCH --open-mode=append",
             f"#SBATCH --signal=TERM@{runtime.signal_before_end_s}"]
    if runtime.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={runtime.gpus_per_node}")
    if runtime.partition:
        lines.append(f"#SBATCH --partition={runtime.partition}")
    if runtime.account:
        lines.append(f"#SBATCH --account={runtime.account}")
    lines += ["", f"# mixforge job {job_id}: resubmit this script to resume from the newest checkpoint",
              "set -eo pipefail", *([runtime.setup] if runtime.setup else []),
              'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
              "export PYTHONUNBUFFERED=1",
              # srun forwards scancel's SIGTERM to torchrun on each node, which forwards it to its ranks once
              f"srun --kill-on-bad-exit=1 {q(runtime.python)} -m torch.distributed.run --nnodes=\"$SLURM_NNODES\" "
              f"--nproc_per_node={runtime.nproc_per_node} --rdzv_backend=c10d "
              f"--rdzv_endpoint=\"$head:{runtime.rdzv_port}\" --rdzv_id=\"$SLURM_JOB_ID\" "
              f"-m mixforge.train.entry {q(config_path)}", ""]
    return "\n".join(lines)


def launch(cfg: RunConfig, runtime: SlurmRuntime, *, job_id: str | None = None) -> Job:
    """Write the config and the script into the output folder; submit with sbatch when Slurm is here."""
    registry = JobRegistry()
    job_id = job_id or new_job_id()
    out = Path(cfg.output_path).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").unlink(missing_ok=True)
    cfg = cfg.model_copy(update={"runtime": runtime})
    config_path, log_path, script = out / "run_config.json", out / "train.log", out / "sbatch.sh"
    config_path.write_text(cfg.model_dump_json(indent=1))
    script.write_text(render(runtime, cfg, job_id, config_path=str(config_path), log_path=str(log_path)))
    record = JobRecord(id=job_id, name=cfg.job_name, runtime=runtime.kind, runtime_spec=runtime.model_dump(mode="json"),
                       config=cfg.model_dump(mode="json"), output_path=str(out), log_path=str(log_path),
                       manifest_path=str(script))
    if shutil.which("sbatch") is None:
        message = f"not submitted (no sbatch here): sbatch {script}"
        print(f"[mixforge] wrote {script}; submit it with:\n  sbatch {script}", file=sys.stderr)
        return Job(register(replace(record, message=message), registry), registry)
    done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise ConfigError(f"sbatch failed: {done.stderr.strip()[-800:]}")
    slurm_id = done.stdout.strip().split(";")[0]  # "12345" or "12345;cluster"
    return Job(register(replace(record, external_id=slurm_id), registry), registry)


def poll(record: JobRecord) -> JobRecord:
    if record.external_id is None:  # written, not submitted
        return replace(record, status="stopped") if record.stop_requested else record
    result = read_result(record.output_path)
    if result is not None:
        status = result.get("status") if result.get("status") in ("succeeded", "stopped") else "failed"
        return replace(record, status=status, mlflow_run_id=result.get("mlflow_run_id") or record.mlflow_run_id)
    if shutil.which("sacct") is None:
        return record
    got = subprocess.run(["sacct", "-j", record.external_id, "-X", "-n", "-P", "-o", "State"],
                         capture_output=True, text=True, timeout=60)
    state = got.stdout.strip().splitlines()[0].split()[0] if got.returncode == 0 and got.stdout.strip() else ""
    if not state:
        return record
    status = STATES.get(state.rstrip("+"), "running")
    if status == "succeeded":  # the batch script ended well, but the run wrote no result.json
        status = "failed"
    if status == "failed" and record.stop_requested:  # e.g. killed after the grace time of `stop`
        status = "stopped"
    if status in ("failed", "stopped"):
        return replace(record, status=status, message=f"Slurm state {state}; last log lines:\n{log_tail(record.log_path)}")
    return replace(record, status=status)


def stop(record: JobRecord) -> None:
    """SIGTERM to the job's steps (torchrun forwards it to its ranks: checkpoint, then exit)."""
    if record.external_id and shutil.which("scancel"):
        subprocess.run(["scancel", "--signal=TERM", record.external_id], capture_output=True, timeout=60)


def logs(record: JobRecord, lines: int | None = 40) -> str:
    from mixforge.runtime.local import logs as local_logs

    return local_logs(record, lines) or record.message
