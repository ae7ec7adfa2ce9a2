"""The seed-shaped loaders and the `mixforge data` commands, on files the tests generate."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from mixforge.cli.app import app


def make_data(path, n=30, extra=()):
    rows = [{"question": f"What causes symptom {i}? System: note", "answer": f"Cause {i} [EOS] is common.",
             "label": "a" if i % 2 else "b"} for i in range(n)]
    path.write_text("\n".join([json.dumps(r) for r in rows] + list(extra)) + "\n")
    return path


def test_seed_workflow(tmp_path, tiny_model_dir, capsys):
    from mixforge import JSONLDatasetLoader, TrainingMethod

    model = str(tiny_model_dir)
    src = make_data(tmp_path / "training_data.jsonl", extra=['{"question": "oops"'])
    loader = JSONLDatasetLoader(question="question", answer="answer")
    loader.load(src)
    raw = loader.show(n=3)
    assert raw[0]["question"].startswith("What causes symptom 0")
    loader.sanitize(model=model)
    loader.transform(method=TrainingMethod.SFT_LORA, model=model)
    shown = loader.show(n=3)
    assert shown[0]["messages"][0]["content"] == "What causes symptom 0? System : note"
    assert shown[0]["messages"][1]["content"] == "Cause 0  is common."
    report = loader.validate(method=TrainingMethod.SFT_LORA, model=model)
    assert report.ok and report.rows_checked == 30 and report.max_seq_len == 512
    printed = capsys.readouterr().out
    assert "[EOS]" in printed  # shown as text, not swallowed as rich markup
    assert "Validation completed" in printed
    train, val, test = loader.split(0.8, 0.1, 0.1, seed=0)
    assert (len(train), len(val), len(test)) == (24, 3, 3)
    assert next(iter(val))["messages"][0]["role"] == "user"
    path = loader.save(tmp_path / "out" / "train.jsonl")
    assert path.endswith("train.jsonl")
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["manifest.json", "rejects.jsonl", "test.jsonl", "train.jsonl", "validation.jsonl"]
    assert sum(1 for _ in open(tmp_path / "out" / "train.jsonl")) == 24
    assert json.loads((tmp_path / "out" / "rejects.jsonl").read_text())["rule"] == "json"


def test_loader_variants(tmp_path):
    from mixforge import CSVDatasetLoader, DatasetLoader, JSONDatasetLoader, ParquetDatasetLoader

    rows = [{"q": f"question {i}", "a": f"answer {i}"} for i in range(4)]
    (tmp_path / "d.csv").write_text("q,a\n" + "".join(f"{r['q']},{r['a']}\n" for r in rows))
    (tmp_path / "d.json").write_text(json.dumps({"items": rows}))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    for cls, name in [(CSVDatasetLoader, "d.csv"), (JSONDatasetLoader, "d.json"), (ParquetDatasetLoader, "d.parquet"),
                      (DatasetLoader, "d.csv")]:
        loader = cls(question="q", answer="a").load(tmp_path / name).transform("sft_full")
        assert loader.show(2)[1]["messages"][1]["content"] == "answer 1", cls.__name__


def run_cli(args):
    return CliRunner().invoke(app, args, catch_exceptions=True, env={"COLUMNS": "250"})


def test_cli_prepare_show_validate_filter_split(tmp_path, tiny_model_dir):
    src = make_data(tmp_path / "in.jsonl", extra=["[1]"])
    out = tmp_path / "out"
    res = run_cli(["data", "prepare", str(src), "--map", "question=question,answer=answer,label=label",
                   "--method", "sft_lora", "--model", str(tiny_model_dir), "--out", str(out),
                   "--split", "0.8,0.1,0.1", "--stages"])
    assert res.exit_code == 0, res.output
    assert "train: 24, validation: 3, test: 3" in res.output and "load/not_object: 1" in res.output
    assert "rows/s" in res.output
    assert json.loads((out / "manifest.json").read_text())["files"]["train"]["rows"] == 24

    res = run_cli(["data", "show", str(src), "-n", "2", "--method", "sft_lora", "--model", str(tiny_model_dir)])
    assert res.exit_code == 0 and "System : note" in res.output

    res = run_cli(["data", "validate", str(out / "train.jsonl"), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0 and "valid" in res.output, res.output

    res = run_cli(["data", "filter", str(out / "train.jsonl"), "--out", str(tmp_path / "f"), "--dedup", "fuzzy"])
    assert res.exit_code == 0, res.output
    res = run_cli(["data", "split", str(out / "train.jsonl"), "--out", str(tmp_path / "s"), "--ratios", "0.5,0.5"])
    assert res.exit_code == 0 and (tmp_path / "s" / "validation.jsonl").exists(), res.output


def test_cli_errors_are_one_red_line(tmp_path, monkeypatch, capsys):
    from mixforge.cli.app import main

    src = make_data(tmp_path / "in.jsonl", extra=["nope"])
    monkeypatch.setattr(sys, "argv", ["mixforge", "data", "validate", str(src), "--map", "question=question,answr=x",
                                      "--strict"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "unknown field 'answr'" in err and "Traceback" not in err
    monkeypatch.setattr(sys, "argv", ["mixforge", "data", "prepare", str(src), "--out", str(tmp_path / "o"),
                                      "--strict"])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 1 and "strict mode: 1 rows rejected (load/json: 1)" in err
