"""DataMixingConfig: the seed's dictionary as written, our spelling, YAML, and every rule's error message."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mixforge.errors import ConfigError
from mixforge.mix.catalog import CATEGORIES, HUB_SOURCES, category_sources, embedded_sources
from mixforge.mix.config import SEED_EXAMPLE, DataMixingConfig, default_mixing_config

REPO = Path(__file__).resolve().parents[2]


def test_seed_dictionary_validates_as_written_and_really_sums_to_100():
    assert len(SEED_EXAMPLE) == 23  # customer_data_percent + 22 categories
    values = [v for k, v in SEED_EXAMPLE.items() if k != "customer_data_percent"]
    assert math.fsum(values) == 100.0  # checked: the seed's own percents do sum to exactly 100
    assert sum(Fraction(str(v)) for v in values) == 100
    cfg = DataMixingConfig.from_dict(SEED_EXAMPLE)
    assert cfg.customer_data_percent == 50
    assert cfg.categories["reasoning-instruction-following"] == 45
    assert cfg.categories["long-context"] == 1
    assert set(cfg.categories) == set(CATEGORIES)
    assert cfg.to_seed_dict() == {k: float(v) for k, v in SEED_EXAMPLE.items()}


def test_every_seed_category_has_a_hub_source_with_licence_and_columns():
    by_cat = {s.category for s in HUB_SOURCES}
    assert by_cat == set(CATEGORIES)
    for src in HUB_SOURCES:
        assert src.license and src.split and src.columns, src.name


def test_categories_summing_to_99_are_refused_with_the_sum():
    bad = {**SEED_EXAMPLE, "nova_math_percent": 1}  # 2 -> 1: the categories now sum to 99
    with pytest.raises(ConfigError) as err:
        DataMixingConfig.from_dict(bad)
    assert "sum to 99" in str(err.value) and "not 100" in str(err.value)


def test_customer_percent_over_100_is_refused():
    with pytest.raises(ConfigError) as err:
        DataMixingConfig.from_dict({**SEED_EXAMPLE, "customer_data_percent": 120})
    assert "customer_data_percent" in str(err.value) and "120" in str(err.value)


def test_category_percent_outside_range_is_refused():
    with pytest.raises(ConfigError, match=r"math_percent: -5 is outside \[0, 100\]"):
        DataMixingConfig.from_dict({"customer_data_percent": 50, "math_percent": -5, "baseline_percent": 105})


def test_unknown_key_suggests_the_nearest_known_one():
    with pytest.raises(ConfigError) as err:
        DataMixingConfig.from_dict({"customer_data_percent": 50, "nova_maths_percent": 100})
    assert "did you mean 'nova_math_percent'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        DataMixingConfig.from_dict({"custmer_data_percent": 50, "math_percent": 100})
    assert "did you mean 'customer_data_percent'" in str(err.value)


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError) as err:
        DataMixingConfig.from_dict({"customer_data_percent": 50, "nova_mth_percent": 1, "baseline_prcent": 2})
    assert len(err.value.problems) == 2


def test_our_spelling_yaml_and_seed_spelling_are_the_same_config(tmp_path):
    ours = DataMixingConfig.from_dict({"customer_data_percent": 50, "math_percent": 20,
                                       "instruction_following_percent": 80})
    seed = DataMixingConfig.from_dict({"customer_data_percent": 50, "nova_math_percent": 20,
                                       "nova_instruction-following_percent": 80})
    nested = DataMixingConfig.from_dict({"customer_data_percent": 50,
                                         "categories": {"math": 20, "instruction-following": 80}})
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({"customer_data_percent": 50, "math_percent": 20,
                                    "instruction-following_percent": 80}))
    from_yaml = DataMixingConfig.from_yaml(path)
    assert ours == seed == nested == from_yaml
    # unspecified categories are 0, as in the seed
    assert ours.category_percents()["agents"] == 0.0
    assert ours.to_seed_dict()["nova_translation_percent"] == 0.0


def test_category_given_twice_is_refused():
    with pytest.raises(ConfigError, match="given twice"):
        DataMixingConfig.from_dict({"customer_data_percent": 50, "math_percent": 50, "nova_math_percent": 50})


def test_all_customer_data_needs_no_category_sum():
    cfg = DataMixingConfig.from_dict({"customer_data_percent": 100})
    assert cfg.source_schedule().shares_at(0) == {"customer": 1}


def test_category_with_weight_needs_a_source():
    with pytest.raises(ConfigError, match="agents_percent: weight 100 but the category has no source"):
        DataMixingConfig.from_dict({"customer_data_percent": 50, "agents_percent": 100, "general_data": "none"})


def test_user_sources_fill_their_own_category(tmp_path):
    cfg = DataMixingConfig.from_dict({
        "customer_data_percent": 60, "legal_percent": 100, "general_data": "none",
        "sources": [{"name": "statutes", "category": "legal", "path": str(tmp_path / "s.jsonl"), "weight": 3},
                    {"name": "cases", "category": "legal", "path": str(tmp_path / "c.jsonl")}]})
    shares = cfg.source_schedule().shares_at(0)
    assert shares == {"customer": Fraction(3, 5), "legal/cases": Fraction(1, 10), "legal/statutes": Fraction(3, 10)}


def test_user_source_needs_exactly_one_location():
    with pytest.raises(ConfigError, match="exactly one of path,? (or )?hub_id"):
        DataMixingConfig.from_dict({"customer_data_percent": 100,
                                    "sources": [{"name": "x", "category": "math"}]})


def test_schedule_stages_are_validated_like_the_top_level():
    with pytest.raises(ConfigError, match=r"schedule\[0\] \(step 10\): category percents sum to 50"):
        DataMixingConfig.from_dict({"customer_data_percent": 50, "math_percent": 100, "general_data": "hub",
                                    "schedule": [{"step": 10, "customer_data_percent": 20, "nova_math_percent": 50}]})
    with pytest.raises(ConfigError, match="strictly increasing"):
        DataMixingConfig.from_dict({"customer_data_percent": 100, "schedule": [
            {"step": 10, "customer_data_percent": 100}, {"step": 5, "customer_data_percent": 100}]})


def test_schedule_resolves_to_exact_per_source_shares():
    cfg = DataMixingConfig.from_dict({
        "customer_data_percent": 50, "math_percent": 25, "baseline_percent": 75, "general_data": "hub",
        "schedule": [{"step": 100, "customer_data_percent": 90, "math_percent": 100}]})
    sched = cfg.source_schedule()
    assert sched.starts == [0, 100]
    first = sched.shares_at(0)
    assert first["customer"] == Fraction(1, 2)
    assert first["baseline/smoltalk"] == Fraction(3, 8)
    # math has two hub sources of weight 1: they share math's 1/8
    assert first["math/gsm8k"] == first["math/metamathqa"] == Fraction(1, 16)
    later = sched.shares_at(150)
    assert later["customer"] == Fraction(9, 10) and later["baseline/smoltalk"] == 0
    assert later["math/gsm8k"] == Fraction(1, 20)


def test_default_config_runs_offline_on_the_shipped_categories():
    cfg = default_mixing_config("tiny-chat", "sft_lora")
    shipped = embedded_sources()
    if shipped:
        assert cfg.general_data == "embedded"
        assert set(cfg.categories) == set(shipped)
        shares = cfg.source_schedule().shares_at(0)
        assert sum(shares.values()) == 1 and shares["customer"] == Fraction(1, 2)
        assert len({v for k, v in shares.items() if k != "customer"}) == 1  # equal shares
    else:
        assert cfg.general_data == "hub"


def test_auto_prefers_embedded_data_and_falls_back_to_the_hub():
    auto = category_sources("auto")
    for category, sources in auto.items():
        if category in embedded_sources():
            assert [s.kind for s in sources] == ["embedded"]
        elif category in CATEGORIES:
            assert sources and all(s.kind == "hub" for s in sources)


def test_every_shipped_mixing_config_validates():
    # mixing-only files, and the `mixing:` section of run configs (`model:` at the top level) that have one
    files = [p for p in sorted((REPO / "configs").glob("*.yaml"))
             if "model" not in (data := yaml.safe_load(p.read_text())) or "mixing" in data]
    assert REPO / "configs" / "mix_default.yaml" in files
    for path in files:
        cfg = DataMixingConfig.from_yaml(path)
        assert sum(cfg.source_schedule().shares_at(0).values()) == 1


def test_read_source_maps_columns_filters_rows_and_locates_errors(tmp_path):
    import json

    from mixforge.errors import DataError
    from mixforge.mix.catalog import Source, read_source, to_record

    path = tmp_path / "qa.jsonl"
    rows = [{"q": "2+2?", "a": {"value": "4"}, "lang": "en", "why": "add"},
            {"q": "1+1?", "a": {"value": "2"}, "lang": "fr", "why": "add"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    src = Source(name="math/mine", category="math", kind="path", location=str(path), format="qa",
                 columns={"prompt": "q", "response": "a.value", "reasoning": "why"}, where={"lang": "en"})
    records = list(read_source(src))
    assert records == [{"id": "math/mine:1", "messages": [
        {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd\n</think>\n4"}]}]
    sharegpt = to_record({"c": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]},
                         fmt="sharegpt", columns={"messages": "c"}, rid="x")
    assert sharegpt["messages"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    broken = Source(name="math/bad", category="math", kind="path", location=str(path), format="qa",
                    columns={"prompt": "question"})
    with pytest.raises(DataError, match="row 1"):
        list(read_source(broken))


def test_embedded_sources_read_as_canonical_records():
    from mixforge.mix.catalog import read_source

    for category, src in embedded_sources().items():
        first = next(iter(read_source(src)))
        assert "id" in first and ("messages" in first or "text" in first), category


def test_ramp_is_cut_into_exact_linear_pieces():
    cfg = DataMixingConfig.from_dict({
        "customer_data_percent": 90, "math_percent": 100, "general_data": "hub",
        "schedule": [{"step": 10, "customer_data_percent": 98, "math_percent": 100, "ramp_steps": 4}]})
    assert [(s, c) for s, c, _ in cfg.stages()] == [(0, 90), (10, 92), (11, 94), (12, 96), (13, 98)]
    long = DataMixingConfig.from_dict({
        "customer_data_percent": 50, "math_percent": 100, "general_data": "hub",
        "schedule": [{"step": 100, "customer_data_percent": 100, "ramp_steps": 1000}]})
    stages = long.stages()
    assert len(stages) == 1 + 100 and stages[-1][:2] == (100 + 990, 100)  # at most 100 pieces
    with pytest.raises(ConfigError, match="ramp ends at step 110, after the next stage starts"):
        DataMixingConfig.from_dict({"customer_data_percent": 100, "schedule": [
            {"step": 10, "customer_data_percent": 100, "ramp_steps": 100},
            {"step": 50, "customer_data_percent": 100}]})


@st.composite
def percent_dicts(draw):
    """Random category percents summing to exactly 100 (in hundredths), in the seed's or our spelling."""
    cats = draw(st.lists(st.sampled_from(sorted(CATEGORIES)), min_size=1, max_size=8, unique=True))
    cuts = sorted(draw(st.lists(st.integers(0, 10000), min_size=len(cats) - 1, max_size=len(cats) - 1)))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 10000], strict=True)]
    seed_spelling = draw(st.booleans())
    out = {"customer_data_percent": draw(st.integers(0, 9999)) / 100, "general_data": "hub"}
    for cat, part in zip(cats, parts, strict=True):
        out[f"nova_{cat}_percent" if seed_spelling else f"{cat.replace('-', '_')}_percent"] = part / 100
    return out


@settings(max_examples=60, deadline=None)
@given(data=percent_dicts(), nudge=st.sampled_from([0.0, 1e-4, -0.5, 1.0]))
def test_property_random_percents_validate_iff_they_sum_to_100(data, nudge):
    key = next(k for k in data if k.endswith("_percent") and k != "customer_data_percent")
    data = {**data, key: data[key] + nudge}
    if nudge == 0.0:
        cfg = DataMixingConfig.from_dict(data)
        shares = cfg.source_schedule().shares_at(0)
        assert sum(shares.values()) == 1  # exact
        assert shares.get("customer", Fraction(0)) == Fraction(str(data["customer_data_percent"])) / 100
    else:
        with pytest.raises(ConfigError, match=r"sum to|outside \[0, 100\]"):
            DataMixingConfig.from_dict(data)


def test_customer_percent_alone_takes_the_default_category_weights():
    # the seed: a mix that names only customer_data_percent keeps the default weights of the general part
    defaults = default_mixing_config()
    cfg = DataMixingConfig.from_dict({"customer_data_percent": 30})
    assert cfg.customer_data_percent == 30
    assert cfg.categories == defaults.categories and cfg.general_data == defaults.general_data
    shares = cfg.source_schedule().shares_at(0)
    assert shares["customer"] == Fraction(3, 10) and sum(shares.values()) == 1
    general = {k: v for k, v in shares.items() if k != "customer"}
    assert len(general) == len(defaults.categories) and len(set(general.values())) == 1  # the defaults: equal
    # the seed's spelling gives the same config, and `get_data_mixing_config()` shows the defaults back
    assert DataMixingConfig.from_dict({"customer_data_percent": 30.0, "general_data": defaults.general_data}) == cfg
    assert cfg.to_seed_dict() == {**defaults.to_seed_dict(), "customer_data_percent": 30}


def test_hub_without_weights_takes_the_seeds_example_weights():
    cfg = DataMixingConfig.from_dict({"customer_data_percent": 50, "general_data": "hub"})
    assert cfg.to_seed_dict() == {k: float(v) for k, v in SEED_EXAMPLE.items()}


def test_a_given_dict_still_leaves_out_categories_at_0_and_unknown_keys_stay_errors():
    cfg = DataMixingConfig.from_dict({"customer_data_percent": 30, "categories": {"math": 100}})
    assert cfg.category_percents()["baseline"] == 0.0 and cfg.categories == {"math": 100}
    with pytest.raises(ConfigError, match="sum to 0"):  # an explicit empty dict is a given dict
        DataMixingConfig.from_dict({"customer_data_percent": 30, "categories": {}})
    with pytest.raises(ConfigError, match="did you mean 'customer_data_percent'"):
        DataMixingConfig.from_dict({"customer_data_prcent": 30})
    with pytest.raises(ConfigError, match="sum to 0"):  # no general data: nothing to default to
        DataMixingConfig.from_dict({"customer_data_percent": 30, "general_data": "none"})


def test_a_schedule_stage_without_weights_keeps_the_previous_stages():
    cfg = DataMixingConfig.from_dict({"customer_data_percent": 50, "general_data": "embedded",
                                      "categories": {"math": 25, "baseline": 75},
                                      "schedule": [{"step": 10, "customer_data_percent": 80}]})
    assert cfg.schedule[0].categories == {"math": 25, "baseline": 75}
    later = cfg.source_schedule().shares_at(10)
    assert later == {"customer": Fraction(4, 5), "math/embedded": Fraction(1, 20), "baseline/embedded": Fraction(3, 20)}
