"""LocalRuntime: the run goes on in its own process on this machine; `launch` returns a job handle at once.

The process starts in a new session, so it survives the caller's exit; its outcome is read back from the
`result.json` the entry point writes, and from whether the process still lives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from mixforge.config import RunConfig


@dataclass(frozen=True)
class LocalRuntime:
    """One process on this machine (the default)."""

    python: str = sys.executable

    def command(self, config_path: Path) -> list[str]:
        return [self.python, "-m", "mixforge.train.entry", str(config_path)]


@dataclass
class Job:
    """A launched run. `status` is queued, running, succeeded, failed or stopped."""

    id: str
    name: str
    output_path: str
    log_path: str
    pid: int | None = None
    _process: subprocess.Popen | None = None

    @property
    def result(self) -> dict | None:
        path = Path(self.output_path) / "result.json"
        return json.loads(path.read_text()) if path.exists() else None

    @property
    def status(self) -> str:
        if self._process is not None and self._process.poll() is None:
            return "running"
        if self._process is None and self.pid and _alive(self.pid):
            return "running"
        result = self.result
        return result["status"] if result else "failed"

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run ends (or `timeout` seconds pass); returns the status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._process is not None:
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return self.status
        while self.status == "running" and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.5)
        return self.status

    def stop(self) -> None:
        """Ask for a clean stop: the run saves a checkpoint, then exits (status 'stopped')."""
        if self.pid and _alive(self.pid):
            os.kill(self.pid, signal.SIGTERM)

    def logs(self, lines: int = 40) -> str:
        path = Path(self.log_path)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def launch(cfg: RunConfig, runtime: LocalRuntime | None = None) -> Job:
    """Write the resolved config into the output folder and start the run in a new process."""
    runtime = runtime or LocalRuntime()
    out = Path(cfg.output_path)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").unlink(missing_ok=True)
    config_path = out / "run_config.json"
    config_path.write_text(cfg.model_dump_json(indent=1))
    log_path = out / "train.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(runtime.command(config_path), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, env={**os.environ})
    return Job(id=uuid.uuid4().hex[:12], name=cfg.job_name, output_path=str(out), log_path=str(log_path),
               pid=process.pid, _process=process)
