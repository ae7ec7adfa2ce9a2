"""LocalRuntime: the run goes on in its own process on this machine; `launch` returns a job handle at once.

The process starts in a new session, so it survives the caller's exit. What it became is read back from the
process table (is that pid, started at that time, still alive?) and from the `result.json` the entry point
writes when it ends. TorchrunRuntime and RayRuntime launch local processes too and are watched the same way
(`start_process`, `poll`, `stop`, `kill_leftovers`, `logs` below). `poll` only reads: it never signals a
process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from mixforge.config import LocalRuntime, RunConfig, Runtime
from mixforge.errors import ConfigError
from mixforge.runtime.jobs import (
    Job,
    JobRecord,
    JobRegistry,
    active_job_writing,
    log_tail,
    new_job_id,
    read_result,
    register,
)

__all__ = ["LocalRuntime", "command", "kill_leftovers", "launch", "logs", "poll", "start_process", "stop"]


def command(runtime: LocalRuntime, config_path: Path) -> list[str]:
    return [runtime.python, "-m", "mixforge.train.entry", str(config_path)]


def launch(cfg: RunConfig, runtime: LocalRuntime, *, job_id: str | None = None) -> Job:
    """Start the run in a new process; returns its job handle at once."""
    return start_process(cfg, runtime, command=lambda path: command(runtime, path), job_id=job_id)


# ---------------------------------------------------------------------------------------------------------
# local processes: start, poll, stop, kill_leftovers, logs (shared by the local, torchrun and ray runtimes)
# ---------------------------------------------------------------------------------------------------------
def start_process(cfg: RunConfig, runtime: Runtime, *, command: Callable[[Path], list[str]],
                  job_id: str | None = None, env: dict[str, str] | None = None) -> Job:
    """Write the resolved config into the output folder, register the job and start `command(config_path)` in a
    new session, its output appended to `<output>/train.log`."""
    registry = JobRegistry()
    out = Path(cfg.output_path).resolve()
    if (busy := active_job_writing(str(out), other_than=job_id)) is not None:
        raise ConfigError(f"output_path: job {busy.id} ({busy.record.status}) is writing into {out}",
                          hint=f"stop it first (mixforge jobs stop {busy.id}) or choose another output_path")
    if stray := _running_config(str(out / "run_config.json")):  # a killed launcher's workers still train here
        raise ConfigError(f"output_path: {len(stray)} process(es) of an earlier job still run {out}/run_config.json",
                          hint="`mixforge jobs stop ID` of that job ends them")
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").unlink(missing_ok=True)  # what a previous attempt wrote is not this attempt's outcome
    cfg = cfg.model_copy(update={"runtime": runtime})
    kind, spec = runtime.kind, runtime.model_dump(mode="json")
    config_path = out / "run_config.json"
    config_path.write_text(cfg.model_dump_json(indent=1))
    log_path = out / "train.log"
    record = register(JobRecord(id=job_id or new_job_id(), name=cfg.job_name, runtime=kind, runtime_spec=spec,
                                config=cfg.model_dump(mode="json"), output_path=str(out), log_path=str(log_path),
                                workdir=os.getcwd()), registry)
    argv = command(config_path)
    with log_path.open("ab") as log:
        log.write(f"[mixforge] job {record.id} attempt {record.attempts}: {' '.join(argv)}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, cwd=record.workdir or None,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        except OSError as exc:  # e.g. the interpreter is missing: the job must not stay "queued" forever
            registry.save(replace(record, status="failed", ended_at=time.time(), message=f"could not start: {exc}"))
            raise ConfigError(f"could not start job {record.id}: {exc}") from None
    record = registry.save(replace(record, status="running", pid=process.pid, pid_started=_started(process.pid),
                                   started_at=time.time(), ended_at=None, stop_requested=False, message=""))
    return Job(record, registry, process)


def poll(record: JobRecord) -> JobRecord:
    """running while the process lives; then what result.json says; no result.json: failed, with the log tail."""
    if record.pid is None:
        return record
    if _alive(record.pid, record.pid_started):
        return replace(record, status="running")
    result = read_result(record.output_path)
    result_file = Path(record.output_path) / "result.json"
    if result is not None:
        status = result.get("status") if result.get("status") in ("succeeded", "stopped") else "failed"
        return replace(record, status=status, ended_at=result_file.stat().st_mtime,
                       mlflow_run_id=result.get("mlflow_run_id") or record.mlflow_run_id)
    ended = _mtime(record.log_path) or time.time()
    leftovers = len(_leftovers(record))  # e.g. torchrun's workers, when torchrun itself was killed
    tail = log_tail(record.log_path) + (f"\n[mixforge] {leftovers} leftover process(es) still run this job's config; "
                                        f"`mixforge jobs stop {record.id}` ends them" if leftovers else "")
    if record.stop_requested:  # stopped hard (e.g. Ray): the newest periodic checkpoint is where resume goes on
        return replace(record, status="stopped", ended_at=ended,
                       message="stopped without a final checkpoint; resume continues from the newest one\n" + tail)
    return replace(record, status="failed", ended_at=ended,
                   message=f"process {record.pid} ended without writing result.json (killed or crashed); "
                           f"last log lines:\n{tail}")


def stop(record: JobRecord) -> None:
    """SIGTERM to the launched process: the entry point checkpoints and exits; torchrun forwards it to its
    workers once (so each worker sees one signal, which the recipe takes as a clean stop)."""
    if record.pid is not None and _alive(record.pid, record.pid_started):
        os.kill(record.pid, signal.SIGTERM)


def logs(record: JobRecord, lines: int | None = 40) -> str:
    if lines is None:
        path = Path(record.log_path)
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return log_tail(record.log_path, lines)


def _started(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _alive(pid: int, started: float | None) -> bool:
    """Is `pid` still our process? A zombie is dead; a live pid with another start time is someone else's."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return False
        return started is None or abs(process.create_time() - started) < 1.0
    except psutil.Error:
        return False


def kill_leftovers(record: JobRecord) -> int:
    """SIGKILL the processes still running this job's config after the launched process died (torchrun starts
    each worker in a session of its own, so a killed torchrun leaves its workers training); returns how many."""
    import psutil

    if record.pid is not None and _alive(record.pid, record.pid_started):
        return 0  # the launcher lives: its workers are not leftovers (`stop` asks it to end them)
    killed = 0
    for process in _leftovers(record):
        try:
            process.kill()
            killed += 1
        except psutil.Error:
            continue
    return killed


def _leftovers(record: JobRecord) -> list:
    """Live processes other than the job's own, started after it, whose command line names its run_config.json."""
    return [p for p in _running_config(str(Path(record.output_path) / "run_config.json"), after=record.pid_started)
            if p.pid != record.pid]


def _running_config(config_path: str, *, after: float | None = None) -> list:
    """Live processes whose command line names `config_path` (started after `after`, when given)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "create_time"]):
        try:
            if config_path not in (process.info["cmdline"] or []):
                continue
            if after and process.info["create_time"] < after - 1.0:
                continue
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            continue
    return found


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: its own parent (or init) reaps it
        pass


def _mtime(path: str) -> float | None:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return None
