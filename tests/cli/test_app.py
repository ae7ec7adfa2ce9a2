"""The CLI shell: help on every command, the error boundary, import cost."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from mixforge.cli.app import app

runner = CliRunner()


def test_help_lists_commands_and_every_group_has_help():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("quickstart", "models", "version"):
        assert command in result.output
    for group in ("models",):
        sub = runner.invoke(app, [group, "--help"])
        assert sub.exit_code == 0 and "Usage" in sub.output


def test_models_build_and_info(tmp_path):
    result = runner.invoke(app, ["models", "build", "tiny-100k", "--out", str(tmp_path / "m"), "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "parameters" in result.output
    info = runner.invoke(app, ["models", "info", str(tmp_path / "m")])
    assert info.exit_code == 0 and "q_proj" in info.output


def test_known_errors_are_one_red_line_and_exit_1(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mixforge", "models", "info", str(tmp_path / "nope" / "x")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_import_is_light():
    # what `import mixforge` loads, checked instead of timed (a wall-clock bound fails on a busy machine):
    # none of the heavy libraries (each takes seconds to import; see FACTS.md) until a command needs it
    heavy = ["torch", "transformers", "peft", "trl", "datasets", "mlflow", "pandas", "pyarrow", "accelerate"]
    code = f"import sys, mixforge; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
