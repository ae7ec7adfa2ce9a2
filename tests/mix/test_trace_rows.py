"""`mix trace` cites the file row a person can open: the reader's own line numbers, which skip blank lines and
rows a source's `where` filters out, are carried from the reader to the run's index."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mixforge.cli.app import app
from mixforge.mix.catalog import Source, read_source, read_source_rows


def _source_file(path):
    """Line 1 kept, 2 blank, 3 filtered out, 4 kept, 5-6 blank, 7 kept, ... (24 kept records)."""
    lines = []
    for i in range(24):
        lines += [json.dumps({"id": f"g{i}", "keep": True, "messages": [
            {"role": "user", "content": f"general {i}"}, {"role": "assistant", "content": f"answer {i}"}]}), ""]
        if i % 3 == 0:
            lines += [json.dumps({"id": f"x{i}", "keep": False, "messages": []}), "   "]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _line(path, row: int) -> dict:
    return json.loads(path.read_text(encoding="utf-8").splitlines()[row - 1])


def test_the_reader_gives_each_record_its_line(tmp_path):
    path = _source_file(tmp_path / "general.jsonl")
    source = Source(name="legal/mine", category="legal", kind="path", location=str(path), where={"keep": True})
    got = list(read_source_rows(source))
    assert [row for row, _ in got][:6] == [1, 5, 7, 9, 13, 15]
    assert all(_line(path, row)["id"] == record["id"] for row, record in got) and len(got) == 24
    assert [r["id"] for r in read_source(source)] == [r["id"] for _, r in got]


@pytest.mark.slow
def test_mix_trace_cites_the_source_file_rows_of_a_run(tiny_model_dir, tmp_path):
    from mixforge.config import RunConfig, parse_overrides
    from mixforge.train.recipe import run

    general = _source_file(tmp_path / "general.jsonl")
    domain = tmp_path / "domain.jsonl"
    domain.write_text("".join(json.dumps({"id": f"d{i}", "messages": [
        {"role": "user", "content": f"q {i}"}, {"role": "assistant", "content": f"a {i}"}]}) + "\n" for i in range(16)))
    mixing = {"customer_data_percent": 50, "general_data": "none", "categories": {"legal": 100},
              "sources": [{"name": "mine", "category": "legal", "path": str(general), "where": {"keep": True}}]}
    cfg = RunConfig(model=str(tiny_model_dir), method="sft_lora", data_path=str(domain), output_path=str(tmp_path / "out"),
                    data_mixing_enabled=True, mixing=mixing, tracking={"enabled": False},
                    overrides=parse_overrides({"max_steps": 3, "global_batch_size": 8, "micro_batch_size": 8}))
    assert run(cfg, show_progress=False).status == "succeeded"

    cited = []
    for step in (1, 2, 3):
        result = CliRunner().invoke(app, ["mix", "trace", str(tmp_path / "out"), "--step", str(step), "--json"])
        assert result.exit_code == 0, result.output
        cited += [json.loads(x) for x in result.output.strip().splitlines()]
    mine = [c for c in cited if c["source"] == "legal/mine"]
    assert len(mine) == 12  # 4 of 8 records a step
    for c in mine:  # the cited line holds the record the index points at (the index-th kept record)
        assert _line(general, c["row"])["id"] == f"g{c['index']}", c
