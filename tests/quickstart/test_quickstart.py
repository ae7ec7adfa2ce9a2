"""A shortened quickstart end to end on the shipped base model: the report's structure and the evidence
summary.json records (benchmark file, replay kind and files of every run), and the arithmetic of the seed
table and the targets. The headline claim itself is test_headline.py."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mixforge.quickstart import ARMS, _aggregate, _targets, benchmark_file, quickstart


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables, self.images = 0, []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "table":
            self.tables += 1
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))


@pytest.mark.slow
def test_shortened_quickstart_records_its_evidence(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXFORGE_HOME", str(tmp_path / "home"))  # the self-replay cache: a fresh one
    summary = quickstart(output=tmp_path / "qs", steps=4, batch_size=8, eval_limit=24, self_replay_n=24,
                         split="dev", show=False)
    out = tmp_path / "qs"
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    assert summary["general_benchmark"] == "benchmark/general_mc.dev.jsonl" and summary["split"] == "dev"
    runs = {r["name"]: r for r in summary["runs"]}
    assert list(runs) == ["base", "domain-only", "curated-kl-all", "self-kl-all"]
    base_general = runs["base"]["general_accuracy"]
    for entry in runs.values():
        assert 0.0 <= entry["general_accuracy"] <= 1.0 and 0.0 <= entry["domain_macro_f1"] <= 1.0
        # retention has no upper bound (a run may beat its base); it is exactly general / base general
        assert entry["retention"] == pytest.approx(entry["general_accuracy"] / base_general)
        assert set(entry["intervals_95"]) == {"general", "domain", "retention", "domain_gain"}
    assert runs["base"]["retention"] == 1.0 and runs["base"]["domain_gain"] == 0.0

    # the kind of replay and the files each run mixed in, read from its mixture manifest
    assert [runs[n]["replay"] for n in runs] == ["none", "none", "curated", "self"]
    assert runs["domain-only"]["replay_files"] == [] and runs["domain-only"]["shares"] == {"customer_data_percent": 100.0}
    curated = runs["curated-kl-all"]["replay_files"]
    assert len(curated) == 6 and all(Path(f).name == "train.jsonl" and Path(f).parent.parent.name == "general"
                                     for f in curated)
    generated = runs["self-kl-all"]["replay_files"]
    assert len(generated) == 6 and all(Path(f).is_relative_to(tmp_path / "home") for f in generated)
    manifest = json.loads((out / "runs" / "self-kl-all" / "mix_manifest.json").read_text())
    assert manifest["self_replay"]["mode"] == "prompts" and manifest["self_replay"]["kept"] >= 1
    prompts = {json.loads(line)["messages"][0]["content"] for f in curated for line in Path(f).read_text().splitlines()}
    for path in generated:  # R's user turns, answered by the base model (the generator's fingerprint is its)
        for line in Path(path).read_text().splitlines():
            user, answer = json.loads(line)["messages"][-2:]
            assert user["content"] in prompts and answer["role"] == "assistant"
    mixed = runs["curated-kl-all"]["shares"]
    assert mixed["customer_data_percent"] == 50.0
    assert sum(v for k, v in mixed.items() if k != "customer_data_percent") == pytest.approx(100)
    rows = [json.loads(r) for r in (out / "runs" / "curated-kl-all" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["mix/customer/records"] == 4 for r in rows if "loss" in r)

    assert set(summary["arms"]) == {"domain-only", "curated-kl-all", "self-kl-all"}
    assert [(runs[n]["replay_loss"], runs[n]["replay_kl_tokens"]) for n in ("curated-kl-all", "self-kl-all")] == [
        ("kl", "all"), ("kl", "all")]
    assert summary["targets"]["self-kl-all retention"]["value"] == runs["self-kl-all"]["retention"]
    assert set(summary["targets"]) == {"domain-only retention", "curated-kl-all retention", "curated-kl-all gain share",
                                       "self-kl-all retention"}

    page = _Html()
    page.feed(Path(summary["report_html"]).read_text())
    assert page.tables >= 1 and page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=summary["mlflow_store"])
    experiment = client.get_experiment_by_name("mixforge-quickstart")
    names = sorted(r.info.run_name for r in client.search_runs([experiment.experiment_id]))
    assert names == ["curated-kl-all", "domain-only", "self-kl-all"]


def entry(arm: str, seed: int, retention: float, gain: float) -> dict:
    return {"name": f"{arm}-s{seed}", "arm": arm, "seed": seed, "replay": ARMS[arm].replay,
            "general_accuracy": retention * 0.7, "domain_macro_f1": 0.1 + gain, "retention": retention,
            "domain_gain": gain, "general_per_subject": {"math": retention / 2}}


def test_seed_table_is_mean_and_min_max_and_targets_use_the_means():
    entries = [entry("domain-only", s, r, 0.6) for s, r in enumerate((0.5, 0.6, 0.7))]
    entries += [entry("curated", s, r, g) for s, (r, g) in enumerate(((0.94, 0.55), (0.97, 0.56), (1.0, 0.57)))]
    arms = _aggregate(entries)
    assert arms["domain-only"]["retention"] == {"mean": pytest.approx(0.6), "min": 0.5, "max": 0.7}
    assert arms["curated"]["seeds"] == [0, 1, 2]
    assert arms["curated"]["general_per_subject"]["math"] == pytest.approx(0.97 / 2)
    targets = _targets(arms)
    assert targets["curated retention"]["value"] == pytest.approx(0.97) and targets["curated retention"]["met"]
    assert targets["domain-only retention"] == {"value": pytest.approx(0.6), "target": "< 0.8", "met": True}
    assert targets["curated gain share"]["value"] == pytest.approx(0.56 / 0.6) and targets["curated gain share"]["met"]
    assert "self retention" not in targets and "self-kl retention" not in targets  # not run
    # a self arm below its target is reported as missed
    arms = _aggregate(entries + [entry("self-kl-all", s, r, 0.5) for s, r in enumerate((0.88, 0.89, 0.9))])
    assert _targets(arms)["self-kl-all retention"] == {"value": pytest.approx(0.89), "target": ">= 0.9", "met": False}


def test_benchmark_halves_and_arms_are_checked():
    assert benchmark_file("dev") == "benchmark/general_mc.dev.jsonl"
    with pytest.raises(ValueError, match="dev"):
        benchmark_file("all")
    with pytest.raises(ValueError, match="unknown"):
        quickstart(arms=("mixed-50",), show=False)
