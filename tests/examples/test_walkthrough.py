"""The walkthrough: the notebook holds the same code as the script, and it executes end to end on the tiny
preset (few steps, small evaluation), the way the seed's users run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _script_cells() -> list[str]:
    text = (EXAMPLES / "walkthrough.py").read_text()
    cells = [c.strip() for c in text.split("# %%")[1:]]
    return [c for c in cells if not c.startswith("[markdown]")]


def test_notebook_and_script_hold_the_same_code():
    import nbformat

    nb = nbformat.read(EXAMPLES / "walkthrough.ipynb", as_version=4)
    code = [c.source.strip() for c in nb.cells if c.cell_type == "code"]
    assert code == _script_cells()


def test_notebook_executes_on_the_tiny_preset(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MIXFORGE_MODEL", "tiny-chat")
    monkeypatch.setenv("MIXFORGE_WALKTHROUGH_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("MIXFORGE_STEPS", "4")
    monkeypatch.setenv("MIXFORGE_EVAL_LIMIT", "16")
    nb = nbformat.read(EXAMPLES / "walkthrough.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "succeeded" in outputs
    assert (tmp_path / "out" / "runs" / "voc-lora" / "final" / "adapter_model.safetensors").exists()
    assert (tmp_path / "out" / "report" / "report.html").exists()
    # the notebook read the settings it was given: the run it trained is the tiny preset for 4 steps
    ran = json.loads((tmp_path / "out" / "runs" / "voc-lora" / "run_config.json").read_text())
    assert (ran["model"], ran["overrides"]["max_steps"]) == ("tiny-chat", 4)
