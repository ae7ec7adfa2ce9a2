"""SlurmRuntime: the sbatch script is pinned by a golden file; submit, status, stop and resume go through
sbatch / sacct / scancel (fake ones on PATH here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mixforge.config import RunConfig, parse_overrides
from mixforge.runtime import SlurmRuntime, launch
from mixforge.runtime.slurm import render

GOLDEN = Path(__file__).parent / "data" / "sbatch.golden.sh"
RUNTIME = SlurmRuntime(nodes=4, gpus_per_node=8, cpus_per_task=32, partition="gpu", account="med",
                       time="12:00:00", setup="source /shared/venv/bin/activate")


def cfg(out) -> RunConfig:
    return RunConfig(model="Qwen/Qwen2.5-0.5B-Instruct", data_path="/shared/med/train.jsonl", output_path=str(out),
                     job_name="med lora", overrides=parse_overrides({"max_steps": 100}))


def test_script_matches_the_golden_file():
    script = render(RUNTIME, cfg("/shared/runs/med"), "0123456789ab", config_path="/shared/runs/med/run_config.json",
                            log_path="/shared/runs/med/train.log")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(script)
    assert script == GOLDEN.read_text(), "rendering changed: review, then rerun with UPDATE_GOLDEN=1"
    assert "--signal=TERM@300" in script and "--nproc_per_node=8" in script
    checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr  # valid shell


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\nhere=$(dirname "$0")\necho "{name} $*" >> "$here/calls.log"\n{body}\n')
    path.chmod(0o755)


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "sbatch", 'echo "4242;cluster"')
    _fake(bin_dir, "sacct", 'cat "$here/state"')
    _fake(bin_dir, "scancel", "")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_submit_status_stop_and_resume(tmp_path, fake_slurm):
    out = tmp_path / "run"
    job = launch(cfg(out), SlurmRuntime(nodes=2))
    assert job.record.external_id == "4242" and (out / "sbatch.sh").exists() and (out / "run_config.json").exists()
    assert f"sbatch --parsable {out / 'sbatch.sh'}" in (fake_slurm / "calls.log").read_text()

    (fake_slurm / "state").write_text("PENDING\n")
    assert job.status == "queued"
    (fake_slurm / "state").write_text("RUNNING\n")
    assert job.status == "running"
    job.stop()
    assert "scancel --signal=TERM 4242" in (fake_slurm / "calls.log").read_text()
    (out / "result.json").write_text('{"status": "stopped", "steps": 7}')  # what the run writes after its checkpoint
    (fake_slurm / "state").write_text("COMPLETED\n")
    assert job.status == "stopped"

    job.resume()
    assert job.record.attempts == 2 and not (out / "result.json").exists()
    (fake_slurm / "state").write_text("FAILED\n")
    (out / "train.log").write_text("step 9\nRuntimeError: CUDA out of memory\n")
    assert job.status == "failed" and job.record.message.endswith("RuntimeError: CUDA out of memory")


def test_without_sbatch_the_script_is_written_and_the_command_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    job = launch(cfg(tmp_path / "run"), SlurmRuntime())
    assert f"sbatch {tmp_path / 'run' / 'sbatch.sh'}" in capsys.readouterr().err
    assert job.status == "queued" and job.record.external_id is None


def test_cli_train_without_sbatch_says_the_job_was_not_submitted(tmp_path, monkeypatch):
    """Foreground `mixforge train` cannot follow a job nobody submitted: exit 1, with the command to submit it;
    --detach writes the script and returns 0 with the job id."""
    from typer.testing import CliRunner

    from mixforge.cli.app import app

    config = tmp_path / "run.yaml"
    config.write_text(f"# mixforge train --config run.yaml\nmodel: tiny-chat\ndata_path: d.jsonl\n"
                      f"output_path: {tmp_path / 'run'}\nruntime: {{kind: slurm, nodes: 2}}\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 1
    assert "was not submitted" in str(result.exception) and f"sbatch {tmp_path / 'run' / 'sbatch.sh'}" in str(result.exception)
    detached = CliRunner().invoke(app, ["train", "--config", str(config), "--detach"])
    assert detached.exit_code == 0 and "started job" in detached.output and "on slurm" in detached.output
