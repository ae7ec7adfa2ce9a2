"""The mixture manifest (written, checked on resume, mismatch refused) and batch tracing, plus the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mixforge.cli.app import app
from mixforge.errors import ConfigError
from mixforge.mix.config import DataMixingConfig
from mixforge.mix.manifest import MANIFEST_FILE, check_manifest, read_manifest, write_manifest
from mixforge.mix.sampler import MixSampler, SourceIndex
from mixforge.mix.trace import trace_step


def write_jsonl(path, n, prefix):
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"{prefix}-{i}", "messages": [
                {"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a" * (i % 7 + 1)}]}) + "\n")
            if i == 2:
                fh.write("\n")  # a blank line: rows after it are shifted by one


def count(rec):
    return len(rec["messages"][0]["content"]) + len(rec["messages"][1]["content"]), len(rec["messages"][1]["content"])


@pytest.fixture
def run(tmp_path):
    write_jsonl(tmp_path / "domain.jsonl", 12, "d")
    write_jsonl(tmp_path / "general.jsonl", 20, "g")
    sources = {"customer": SourceIndex.from_jsonl(tmp_path / "domain.jsonl", count=count),
               "math/embedded": SourceIndex.from_jsonl(tmp_path / "general.jsonl", count=count)}
    cfg = DataMixingConfig.from_dict({"customer_data_percent": 50, "math_percent": 100, "general_data": "hub"})
    return tmp_path, sources, cfg


def make(sources, **kw):
    args = dict(global_batch_size=6, seed=7, max_steps=10)
    args.update(kw)
    return MixSampler(sources, args.pop("schedule", {"customer": 50, "math/embedded": 50}), **args)


def test_from_jsonl_fingerprints_content_and_remembers_rows(run):
    tmp_path, sources, _ = run
    idx = sources["customer"]
    assert idx.num_records == 12 and idx.fingerprint.startswith("sha256:")
    assert idx.rows.tolist()[:5] == [1, 2, 3, 5, 6]  # row 4 is blank
    assert idx.tokens[0] == 3 and idx.loss_tokens[0] == 1


def test_manifest_round_trip_and_unchanged_mix_resumes(run):
    tmp_path, sources, cfg = run
    sampler = make(sources)
    write_manifest(tmp_path / "out", sampler, config=cfg)
    manifest = read_manifest(tmp_path / "out")
    assert manifest["sources"]["customer"]["num_records"] == 12
    assert manifest["schedule"] == [[0, {"customer": "1/2", "math/embedded": "1/2"}]]
    assert check_manifest(tmp_path / "out", make(sources), config=cfg) == []
    # the world size may change on resume: the global sequence does not depend on it
    assert check_manifest(tmp_path / "out", make(sources, world_size=2), config=cfg) == []


def test_changed_source_is_refused_with_what_changed(run):
    tmp_path, sources, cfg = run
    write_manifest(tmp_path / "out", make(sources), config=cfg)
    write_jsonl(tmp_path / "domain.jsonl", 13, "d")  # one more record
    changed = {**sources, "customer": SourceIndex.from_jsonl(tmp_path / "domain.jsonl", count=count)}
    with pytest.raises(ConfigError) as err:
        check_manifest(tmp_path / "out", make(changed), config=cfg)
    text = str(err.value)
    assert "source 'customer' changed" in text and "num_records 12 -> 13" in text
    assert "content fingerprint differs" in text
    # forced: accepted, and the changes are returned for the log
    assert check_manifest(tmp_path / "out", make(changed), config=cfg, force=True)


def test_changed_config_is_refused(run):
    tmp_path, sources, cfg = run
    write_manifest(tmp_path / "out", make(sources), config=cfg)
    other = DataMixingConfig.from_dict({"customer_data_percent": 75, "math_percent": 100, "general_data": "hub"})
    with pytest.raises(ConfigError) as err:
        check_manifest(tmp_path / "out", make(sources, schedule={"customer": 75, "math/embedded": 25}), config=other)
    text = str(err.value)
    assert "share of 'customer' from step 0 changed from 1/2 to 3/4" in text
    assert "mixing config changed in: customer_data_percent" in text


@settings(max_examples=25, deadline=None)
@given(change=st.sampled_from(["seed", "unit", "batch", "weights", "size", "tokens", "source"]))
def test_property_any_mismatch_is_refused(tmp_path_factory, change):
    tmp = tmp_path_factory.mktemp("m")
    rng = np.random.default_rng(0)
    sources = {n: SourceIndex(10, rng.integers(1, 9, 10), rng.integers(1, 9, 10), fingerprint=f"fp-{n}")
               for n in ("customer", "g")}
    base = dict(global_batch_size=4, seed=1, unit="examples", schedule={"customer": 1, "g": 1})
    write_manifest(tmp, make(sources, **base))
    kw, srcs = dict(base), dict(sources)
    if change == "seed":
        kw["seed"] = 2
    elif change == "unit":
        kw["unit"], kw["global_batch_size"] = "tokens", 40
    elif change == "batch":
        kw["global_batch_size"] = 8
    elif change == "weights":
        kw["schedule"] = {"customer": 2, "g": 1}
    elif change == "size":
        srcs["g"] = SourceIndex(9, fingerprint="fp-g")
    elif change == "tokens":
        srcs["g"] = SourceIndex(10, sources["g"].tokens + 1, sources["g"].loss_tokens, fingerprint="fp-g")
    else:
        srcs["h"] = sources["g"]
        kw["schedule"] = {"customer": 1, "g": 1, "h": 1}
    with pytest.raises(ConfigError, match="the mix differs from the run's manifest"):
        check_manifest(tmp, make(srcs, **kw))


RAMP = [(0, {"customer": 50, "math/embedded": 50}), (2, {"customer": 60, "math/embedded": 40}),
        (3, {"customer": 70, "math/embedded": 30}), (6, {"customer": 1, "math/embedded": 2})]


@pytest.mark.parametrize("unit,batch,schedule", [("examples", 6, None), ("tokens", 60, None),
                                                 ("loss_tokens", 30, None), ("examples", 6, RAMP),
                                                 ("tokens", 60, RAMP)])
def test_trace_lists_the_records_the_run_used(run, unit, batch, schedule):
    tmp_path, sources, cfg = run
    extra = {"schedule": schedule} if schedule else {}
    sampler = make(sources, unit=unit, global_batch_size=batch, world_size=2, **extra)
    write_manifest(tmp_path / "out", sampler, config=cfg)
    reference = make(sources, unit=unit, global_batch_size=batch, **extra)
    steps = [list(b) for b in reference]
    for k in (1, 4, 10):
        rows = trace_step(tmp_path / "out", k)
        assert [(r.source, r.index) for r in rows] == steps[k - 1]
        assert {r.rank for r in rows} <= {0, 1}
        for r in rows:  # the file and row point at the very record
            line = (tmp_path / ("domain.jsonl" if r.source == "customer" else "general.jsonl")).read_text().split("\n")[r.row - 1]
            assert json.loads(line)["id"] == f"{'d' if r.source == 'customer' else 'g'}-{r.index}"
    with pytest.raises(ConfigError, match="has 10 optimizer steps"):
        trace_step(tmp_path / "out", 11)


runner = CliRunner()


def test_cli_catalog_show_and_trace(run, tmp_path):
    result = runner.invoke(app, ["mix", "catalog", "--general-data", "hub"])
    assert result.exit_code == 0, result.output
    assert "reasoning-instruction-following" in result.output and "openai/gsm8k" in result.output
    assert "licence=mit" in result.output

    cfg_path = tmp_path / "mix.yaml"
    cfg_path.write_text("customer_data_percent: 50\nnova_math_percent: 25\nnova_baseline_percent: 75\n"
                        "general_data: hub\n")
    result = runner.invoke(app, ["mix", "show", str(cfg_path), "--batch-size", "8", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert "customer" in result.output and "(1/2)" in result.output and "(3/8)" in result.output
    assert "< 1" in result.output

    tmp, sources, cfg = run
    write_manifest(tmp / "out", make(sources), config=cfg)
    result = runner.invoke(app, ["mix", "trace", str(tmp / "out"), "--step", "3", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.output.strip().splitlines()]
    assert len(lines) == 6 and {x["source"] for x in lines} == {"customer", "math/embedded"}
    assert (tmp / "out" / MANIFEST_FILE).exists()


def test_cli_show_reports_a_bad_config_as_one_error(tmp_path):
    cfg_path = tmp_path / "bad.yaml"
    cfg_path.write_text("customer_data_percent: 50\nmath_percent: 99\ngeneral_data: hub\n")
    result = runner.invoke(app, ["mix", "show", str(cfg_path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError) and "sum to 99" in str(result.exception)
