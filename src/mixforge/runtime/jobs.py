"""The job registry: every launched run, in a sqlite file in MIXFORGE_HOME, and the `Job` handle over it.

    job = launch(cfg, TorchrunRuntime(nproc_per_node=2))  # mixforge.runtime.launch: returns at once
    job.status            # queued | running | succeeded | failed | stopped (read back from the engine)
    job.logs(40); job.stop(); job.resume(); job.wait()
    list_jobs(); get_job("3f2a")                          # any unique prefix of an id

Status is never kept in memory: each read asks the engine (the process table and `result.json` for local
processes, kubectl for Kubernetes, sacct for Slurm) and writes what it saw back, so it survives the caller's
exit. A process that died without writing `result.json` is `failed`, and its last log lines are kept as the
job's message. Reading never acts on a process: stopping is `stop()`, and the workers a killed launcher left
behind end only with `kill_leftovers()` (which `mixforge jobs stop` calls for a job that has ended).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import import_module
from pathlib import Path
from typing import Any, Literal

from mixforge.errors import ConfigError

Status = Literal["queued", "running", "succeeded", "failed", "stopped"]
ACTIVE = ("queued", "running")
TAIL_LINES = 20  # log lines kept as the message of a job that died

# runtime kind -> the module that launches, watches and stops it (each has `launch`, `poll`, `stop`, `logs`;
# those that start local processes also `kill_leftovers`)
BACKENDS = {
    "local": "mixforge.runtime.local",
    "torchrun": "mixforge.runtime.torchrun",
    "ray": "mixforge.runtime.ray",
    "kubernetes": "mixforge.runtime.kubernetes",
    "slurm": "mixforge.runtime.slurm",
}


@dataclass(frozen=True)
class JobRecord:
    """One row of the registry."""

    id: str
    name: str
    runtime: str  # a key of BACKENDS
    runtime_spec: dict[str, Any]  # the runtime's fields, enough to launch it again
    config: dict[str, Any]  # the resolved RunConfig
    status: str = "queued"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    output_path: str = ""
    log_path: str = ""
    workdir: str = ""  # the launcher's working folder: relative paths in the config are read from there
    pid: int | None = None
    pid_started: float | None = None  # the process's start time, so a reused pid is not taken for ours
    external_id: str | None = None  # the engine's name for it: Kubernetes object, Slurm job id
    manifest_path: str | None = None  # the rendered PyTorchJob / sbatch script
    mlflow_run_id: str | None = None
    stop_requested: bool = False
    attempts: int = 1
    message: str = ""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


_JSON_FIELDS = ("runtime_spec", "config")
_COLUMNS = [f.name for f in fields(JobRecord)]


def registry_path() -> Path:
    from mixforge.models.registry import mixforge_home

    return mixforge_home() / "jobs.db"


class JobRegistry:
    """The sqlite file of jobs. Each call opens its own short connection, so processes may share the file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else registry_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(f"CREATE TABLE IF NOT EXISTS jobs ({', '.join(_COLUMNS)}, PRIMARY KEY (id))")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def add(self, record: JobRecord) -> JobRecord:
        row = _to_row(record)
        with closing(self._connect()) as db, db:
            db.execute(f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        return record

    def save(self, record: JobRecord) -> JobRecord:
        row = _to_row(record)
        with closing(self._connect()) as db, db:
            db.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in row)} WHERE id = ?", [*row.values(), record.id])
        return record

    def get(self, job_id: str) -> JobRecord:
        """The job whose id is `job_id` or starts with it (a unique prefix is enough)."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM jobs WHERE id LIKE ? ORDER BY created_at", (f"{job_id}%",)).fetchall()
        exact = [r for r in rows if r["id"] == job_id]
        if exact:
            return _from_row(exact[0])
        if not rows:
            raise ConfigError(f"no job {job_id!r} in {self.path}", hint="`mixforge jobs list` shows the jobs")
        if len(rows) > 1:
            raise ConfigError(f"job id {job_id!r} is ambiguous: {', '.join(r['id'] for r in rows)}")
        return _from_row(rows[0])

    def all(self, limit: int | None = None) -> list[JobRecord]:
        """Newest first."""
        sql = "SELECT * FROM jobs ORDER BY created_at DESC" + (f" LIMIT {int(limit)}" if limit else "")
        with closing(self._connect()) as db:
            return [_from_row(r) for r in db.execute(sql).fetchall()]


def _to_row(record: JobRecord) -> dict[str, Any]:
    row = asdict(record)
    for key in _JSON_FIELDS:
        row[key] = json.dumps(row[key])
    row["stop_requested"] = int(record.stop_requested)
    return row


def _from_row(row: sqlite3.Row) -> JobRecord:
    data = dict(row)
    for key in _JSON_FIELDS:
        data[key] = json.loads(data[key])
    data["stop_requested"] = bool(data["stop_requested"])
    return JobRecord(**data)


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def _backend(kind: str):
    if kind not in BACKENDS:
        raise ConfigError(f"job runtime {kind!r} is not one of {', '.join(BACKENDS)}")
    return import_module(BACKENDS[kind])


# ---------------------------------------------------------------------------------------------------------
# what every backend reads the same way: result.json and the newest checkpoint of the output folder
# ---------------------------------------------------------------------------------------------------------
def read_result(output_path: str) -> dict[str, Any] | None:
    path = Path(output_path) / "result.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def mlflow_run_id(output_path: str) -> str | None:
    """From result.json, else from the newest checkpoint's state.json (a run that is still going)."""
    result = read_result(output_path)
    if result and result.get("mlflow_run_id"):
        return result["mlflow_run_id"]
    checkpoints = sorted((Path(output_path) / "checkpoints").glob("step-*/state.json"))
    for state in reversed(checkpoints):
        try:
            return json.loads(state.read_text(encoding="utf-8")).get("mlflow_run_id")
        except (OSError, json.JSONDecodeError):
            continue
    return None


def log_tail(path: str, lines: int = TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------------------
# the handle
# ---------------------------------------------------------------------------------------------------------
class Job:
    """A handle on one registered job; every property reads the engine again."""

    def __init__(self, record: JobRecord, registry: JobRegistry | None = None, process: Any = None) -> None:
        self._record = record
        self._registry = registry or JobRegistry()
        self._process = process  # the Popen when this process launched it (lets us reap our own child)

    def __repr__(self) -> str:  # the status last read: a repr asks no engine
        return f"Job(id={self.id!r}, name={self.name!r}, runtime={self.record.runtime!r}, status={self.record.status!r})"

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def output_path(self) -> str:
        return self._record.output_path

    @property
    def log_path(self) -> str:
        return self._record.log_path

    @property
    def pid(self) -> int | None:
        return self._record.pid

    @property
    def record(self) -> JobRecord:
        return self._record

    def refresh(self) -> JobRecord:
        """Ask the engine how the job is, store the answer and return it."""
        if self._process is not None:
            self._process.poll()  # reap our own child, so a finished process is not a zombie "running" forever
        fresh = self._registry.get(self.id)
        if fresh.active:
            polled = _backend(fresh.runtime).poll(fresh)
            polled = replace(polled, mlflow_run_id=mlflow_run_id(polled.output_path) or polled.mlflow_run_id) \
                if polled.output_path else polled
            if polled != fresh:
                self._registry.save(polled)
            fresh = polled
        self._record = fresh
        return fresh

    @property
    def status(self) -> str:
        """What the engine says now (a read: it signals no process)."""
        return self.refresh().status

    @property
    def result(self) -> dict[str, Any] | None:
        return read_result(self.output_path) if self.output_path else None

    @property
    def mlflow_run_id(self) -> str | None:
        return self.refresh().mlflow_run_id

    def wait(self, timeout: float | None = None, poll_s: float = 0.5) -> str:
        """Block until the job ends (or `timeout` seconds pass); returns the status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (status := self.status) in ACTIVE:
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(poll_s)
        return status

    def logs(self, lines: int | None = 40) -> str:
        return _backend(self._record.runtime).logs(self.refresh(), lines)

    def follow(self, poll_s: float = 0.5) -> Iterator[str]:
        """Yield log text as it is written, until the job ends."""
        record = self.refresh()
        follow = getattr(_backend(record.runtime), "follow", None)
        if follow is not None:
            yield from follow(record)
            return
        yield from follow_file(self, poll_s=poll_s)

    def stop(self) -> None:
        """A clean stop: the run saves a checkpoint, then exits (status 'stopped')."""
        record = self.refresh()
        if not record.active:
            return
        record = replace(record, stop_requested=True)
        self._registry.save(record)
        _backend(record.runtime).stop(record)
        self._record = record

    def kill_leftovers(self) -> int:
        """SIGKILL the processes an ended job left behind (torchrun's workers, each in a session of its own, train
        on when torchrun itself is killed); returns how many. Nothing while the job's own process lives."""
        record = self.refresh()
        kill = getattr(_backend(record.runtime), "kill_leftovers", None)  # only kinds that start local processes
        return kill(record) if kill is not None and not record.active else 0

    def resume(self) -> Job:
        """Launch the same config on the same runtime again, under the same id; the recipe continues from the
        newest checkpoint, mixer state included."""
        record = self.refresh()
        if record.active:
            raise ConfigError(f"job {record.id} is {record.status}; stop it before resuming",
                              hint=f"mixforge jobs stop {record.id}")
        from mixforge.config import parse_run_config

        cfg = parse_run_config(record.config)  # its runtime is the one the job ran on
        job = _backend(cfg.runtime.kind).launch(cfg, cfg.runtime, job_id=record.id)
        self._record, self._process = job.record, job._process
        return job


def follow_file(job: Job, poll_s: float = 0.5) -> Iterator[str]:
    """Tail a local log file until the job ends (then print what is left)."""
    path = Path(job.log_path)
    position = 0
    while True:
        active = job.status in ACTIVE
        if path.exists():
            with path.open("r", encoding="utf-8", errors="replace") as f:
                f.seek(position)
                chunk = f.read()
                position = f.tell()
            if chunk:
                yield chunk
        if not active:
            return
        time.sleep(poll_s)


# ---------------------------------------------------------------------------------------------------------
# the API behind `mixforge jobs ...`
# ---------------------------------------------------------------------------------------------------------
def register(record: JobRecord, registry: JobRegistry | None = None) -> JobRecord:
    """Add a new job, or (same id: a resume) reset the stored one for its next attempt."""
    registry = registry or JobRegistry()
    try:
        previous = registry.get(record.id)
    except ConfigError:
        return registry.add(record)
    if previous.id != record.id:
        return registry.add(record)
    return registry.save(replace(record, created_at=previous.created_at, attempts=previous.attempts + 1,
                                 mlflow_run_id=record.mlflow_run_id or previous.mlflow_run_id))


def active_job_writing(output_path: str, *, other_than: str | None = None) -> Job | None:
    """A queued or running job that writes into `output_path` (two runs must not share one output folder)."""
    registry = JobRegistry()
    for record in registry.all():
        if record.output_path == output_path and record.id != other_than and record.active:
            job = Job(record, registry)
            if job.refresh().active:
                return job
    return None


def list_jobs(limit: int | None = None) -> list[Job]:
    """Every registered job, newest first, each with a fresh status."""
    registry = JobRegistry()
    jobs = [Job(r, registry) for r in registry.all(limit)]
    for job in jobs:
        job.refresh()
    return jobs


def get_job(job_id: str) -> Job:
    registry = JobRegistry()
    job = Job(registry.get(job_id), registry)
    job.refresh()
    return job


def stop_job(job_id: str) -> Job:
    job = get_job(job_id)
    job.stop()
    return job


def resume_job(job_id: str) -> Job:
    return get_job(job_id).resume()
