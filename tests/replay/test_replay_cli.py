"""`mixforge replay generate` through the CLI: it writes the records, says what it dropped, reuses a finished
generation, and turns a bad option into one red line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mixforge.cli.app import app


def test_replay_generate_writes_then_reuses(base_model, tmp_path):
    args = ["replay", "generate", "--model", base_model, "--out", str(tmp_path / "r"), "--n", "4", "--mode", "prompts",
            "--categories", "math,stem", "--max-new-tokens", "12", "--temperature", "0", "--batch-size", "4"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert f"kept {manifest['kept']} of {manifest['attempted']} attempts" in first.output
    assert manifest["per_category"]["math"]["quota"] == 2 and (tmp_path / "r" / "stem.jsonl").is_file()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "reused the finished generation" in again.output


def test_bad_categories_are_refused(base_model, tmp_path):
    result = CliRunner().invoke(app, ["replay", "generate", "--model", base_model, "--out", str(tmp_path / "r"),
                                      "--n", "2", "--categories", "math=1,stem"])
    assert result.exit_code != 0


def test_vllm_backend_without_vllm_is_one_clear_error(base_model, tmp_path):
    from mixforge.replay.backends import vllm_available

    if vllm_available():
        return
    result = CliRunner().invoke(app, ["replay", "generate", "--model", base_model, "--out", str(tmp_path / "r"),
                                      "--n", "2", "--backend", "vllm"])
    assert result.exit_code != 0 and "mixforge[vllm]" in str(result.exception)
