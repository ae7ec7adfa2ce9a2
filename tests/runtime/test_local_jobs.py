"""Local jobs: the handle comes back at once, the registry outlives the caller, kill -9 shows as failed with the
log tail, a clean stop checkpoints, and resuming (twice) ends with the same weights as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runtime_helpers import PATIENCE, run_config, wait_for
from safetensors.torch import load_file
from typer.testing import CliRunner

from mixforge.cli.app import app
from mixforge.runtime.jobs import JobRegistry, get_job, list_jobs, stop_job
from mixforge.train.recipe import run

pytestmark = pytest.mark.slow

# LoRA with dropout: a resume must also restore the RNG state to match bit for bit
COMMON = {"method": "sft_lora", "max_steps": 40, "save_every": 2, "keep_checkpoints": 3, "lora_dropout": 0.1}

LAUNCH_AND_EXIT = """
import sys
from mixforge.runtime import LocalRuntime, launch
from runtime_helpers import run_config
job = launch(run_config(sys.argv[1], sys.argv[2], sys.argv[3], **{COMMON!r}), LocalRuntime())
print(job.id)
""".replace("{COMMON!r}", repr(COMMON))


def checkpoint(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:06d}" / "state.json"


def test_kill_stop_and_resume_end_with_the_weights_of_an_uninterrupted_run(tiny_model_dir, sft_data, tmp_path,
                                                                            spy_path):
    straight = run(run_config(tiny_model_dir, sft_data, tmp_path / "straight", **COMMON), show_progress=False)
    assert straight.status == "succeeded"

    # the caller launches and exits at once; the job goes on and the registry knows it
    out = tmp_path / "job"
    caller = subprocess.run([sys.executable, "-c", LAUNCH_AND_EXIT, str(tiny_model_dir), sft_data, str(out)],
                            capture_output=True, text=True, timeout=PATIENCE)
    assert caller.returncode == 0, caller.stderr
    job = get_job(caller.stdout.strip())
    assert job.status == "running" and job.pid is not None

    # kill -9 mid-run: failed, with the last log lines, and no final model
    wait_for(lambda: checkpoint(out, 4).exists(), timeout=PATIENCE, what="checkpoint 4", job=job)
    os.kill(job.pid, signal.SIGKILL)
    wait_for(lambda: job.status != "running", timeout=PATIENCE, what="the job to end")
    record = job.record
    assert record.status == "failed" and record.ended_at is not None
    assert "ended without writing result.json" in record.message
    assert f"job {job.id} attempt 1" in record.message  # the log tail
    assert not (out / "final").exists()
    shown = CliRunner().invoke(app, ["jobs", "status", job.id[:6]])
    assert shown.exit_code == 0 and "failed" in shown.stdout and "result.json" in shown.stdout

    # resume (from the CLI): same id, second attempt; then a clean stop checkpoints and exits as `stopped`
    resumed = CliRunner().invoke(app, ["jobs", "resume", job.id])
    assert resumed.exit_code == 0, resumed.stdout
    assert "attempt 2" in resumed.stdout
    wait_for(lambda: checkpoint(out, 12).exists(), timeout=PATIENCE, what="checkpoint 12", job=job)
    stop_job(job.id)
    assert job.wait(timeout=PATIENCE) == "stopped", job.logs(30)
    stopped_at = job.result["steps"]
    assert 12 <= stopped_at < 40 and checkpoint(out, stopped_at).exists()

    # resume again: it finishes, and the weights equal the uninterrupted run's, bit for bit
    job.resume()
    assert job.wait(timeout=PATIENCE) == "succeeded", job.logs(30)
    assert job.record.attempts == 3 and job.result["steps"] == 40
    a = load_file(Path(straight.final_path) / "adapter_model.safetensors")
    b = load_file(out / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    listed = CliRunner().invoke(app, ["jobs", "list"])
    assert job.id in listed.stdout and "succeeded" in listed.stdout
    logs = CliRunner().invoke(app, ["jobs", "logs", job.id, "-n", "200"])
    assert "attempt 3" in logs.stdout
    followed = CliRunner().invoke(app, ["jobs", "logs", job.id, "--follow"])  # a finished job: all, then return
    assert followed.exit_code == 0 and "attempt 1" in followed.stdout and "attempt 3" in followed.stdout
    again = CliRunner().invoke(app, ["jobs", "stop", job.id])
    assert "succeeded already" in again.stdout


def test_a_process_that_dies_at_once_is_failed_with_its_last_lines(tmp_path, sft_data):
    from mixforge.runtime import LocalRuntime, launch

    crash = tmp_path / "crash.sh"  # stands in for an interpreter whose entry point raises at start-up
    crash.write_text("#!/bin/sh\necho 'Traceback (most recent call last):'\necho 'ValueError: boom' >&2\nexit 1\n")
    crash.chmod(0o755)
    job = launch(run_config(tmp_path / "m", sft_data, tmp_path / "bad"), LocalRuntime(python=str(crash)))
    assert job.wait(timeout=PATIENCE) == "failed"
    assert job.record.message.endswith("ValueError: boom") and job.record.ended_at is not None
    assert [j.id for j in list_jobs() if j.id == job.id]


def test_an_interpreter_that_cannot_start_fails_the_job_at_once(tmp_path, sft_data):
    from mixforge.errors import ConfigError
    from mixforge.runtime import LocalRuntime, launch

    with pytest.raises(ConfigError, match="could not start"):
        launch(run_config(tmp_path / "m", sft_data, tmp_path / "o"), LocalRuntime(python=str(tmp_path / "no-python")))
    assert list_jobs(1)[0].record.status == "failed"


def test_workers_left_by_a_killed_launcher_are_ended(tmp_path, sft_data):
    """torchrun starts each worker in a session of its own: when torchrun is killed -9 they would train on,
    unwatched. A fake launcher with one such worker stands in for it here."""
    import psutil

    from mixforge.errors import ConfigError
    from mixforge.runtime import LocalRuntime, launch

    launcher = tmp_path / "launcher.sh"
    launcher.write_text('#!/bin/sh\nsetsid python3 -c "import time; time.sleep(120)" "$3" &\nexec sleep 120\n')
    launcher.chmod(0o755)
    job = launch(run_config(tmp_path / "m", sft_data, tmp_path / "o"), LocalRuntime(python=str(launcher)))
    config = str(tmp_path / "o" / "run_config.json")

    def workers() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline"]) if config in (p.info["cmdline"] or [])
                and p.pid != job.pid and p.status() != psutil.STATUS_ZOMBIE]

    try:
        wait_for(lambda: workers(), timeout=PATIENCE, what="the worker")
        with pytest.raises(ConfigError, match=f"job {job.id} .running. is writing into"):  # one run per folder
            launch(run_config(tmp_path / "m", sft_data, tmp_path / "o"), LocalRuntime())
        os.kill(job.pid, signal.SIGKILL)
        wait_for(lambda: job.status == "failed", timeout=PATIENCE, what="failed")
        assert "1 leftover process(es) still run" in job.record.message
        # reading is not acting: status, repr and the job list leave the worker alone
        assert [job.status, job.status, repr(job).endswith("status='failed')"), len(list_jobs())] == [
            "failed", "failed", True, len(list_jobs())]
        assert len(workers()) == 1
        with pytest.raises(ConfigError, match="1 process.* of an earlier job still run"):  # nor may a new run start
            launch(run_config(tmp_path / "m", sft_data, tmp_path / "o"), LocalRuntime())
        result = CliRunner().invoke(app, ["jobs", "stop", job.id])  # the explicit verb
        assert result.exit_code == 0 and "killed 1 leftover process" in result.output, result.output
        wait_for(lambda: not workers(), timeout=PATIENCE, what="the worker to end")
        assert job.kill_leftovers() == 0
    finally:  # whatever happened, leave no sleeper behind
        for process in [*workers(), *([psutil.Process(job.pid)] if psutil.pid_exists(job.pid) else [])]:
            process.kill()


def test_a_reused_pid_is_not_taken_for_the_job(tmp_path):
    from mixforge.runtime.jobs import JobRecord
    from mixforge.runtime.local import poll

    me = os.getpid()  # alive, but started long before this "job"
    record = JobRecord(id="x", name="x", runtime="local", runtime_spec={}, config={}, status="running",
                       output_path=str(tmp_path), log_path=str(tmp_path / "log"), pid=me, pid_started=time.time())
    assert poll(record).status == "failed"


def test_registry_finds_unique_prefixes(tmp_path):
    from mixforge.errors import ConfigError
    from mixforge.runtime.jobs import JobRecord

    registry = JobRegistry(tmp_path / "jobs.db")
    for job_id in ("abc111", "abc222", "def333"):
        registry.add(JobRecord(id=job_id, name=job_id, runtime="local", runtime_spec={"kind": "local"}, config={}))
    assert registry.get("def").id == "def333" and registry.get("abc111").id == "abc111"
    with pytest.raises(ConfigError, match="ambiguous"):
        registry.get("abc")
    with pytest.raises(ConfigError, match="no job"):
        registry.get("zzz")
    assert [r.id for r in registry.all()][0] == "def333"  # newest first
