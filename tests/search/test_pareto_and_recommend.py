"""The Pareto front, its knee, the recommendation rule and the simplex rounding, on literal inputs."""

from __future__ import annotations

import math

import pytest

from mixforge.search.pareto import dominates, knee, pareto_front
from mixforge.search.recommend import recommend
from mixforge.search.weights import params_for, round_percents


def trial(name, percent, retention, low, domain):
    return {"name": name, "customer_data_percent": percent, "retention": retention, "domain": domain,
            "intervals": {"retention": [low, retention + 0.02]}}


# a sweep as it usually looks: more customer data, more domain skill, less retention
SWEEP = [trial("c100", 100, 0.62, 0.56, 0.95), trial("c75", 75, 0.90, 0.86, 0.93), trial("c50", 50, 0.99, 0.96, 0.87),
         trial("c25", 25, 1.00, 0.98, 0.70), trial("c10", 10, 0.97, 0.95, 0.50)]


def test_dominates_needs_one_strict_improvement():
    assert dominates({"retention": 1.0, "domain": 0.5}, {"retention": 0.9, "domain": 0.5})
    assert not dominates({"retention": 1.0, "domain": 0.5}, {"retention": 1.0, "domain": 0.5})
    assert not dominates({"retention": 1.0, "domain": 0.4}, {"retention": 0.9, "domain": 0.5})


def test_pareto_front_drops_dominated_and_nan_points():
    assert pareto_front(SWEEP) == [0, 1, 2, 3]  # c10 is beaten by c25 on both
    points = [{"retention": 0.9, "domain": 0.9}, {"retention": 0.9, "domain": 0.9},
              {"retention": math.nan, "domain": 1.0}, {"retention": 0.5, "domain": 0.5}]
    assert pareto_front(points) == [0, 1]  # equal points both stay; NaN never on the front


def test_knee_is_the_front_point_nearest_the_utopia_corner():
    # scaled over the front: retention 0.62..1.00, domain 0.70..0.95
    # c75: (0.10/0.38)^2 + (0.02/0.25)^2 = 0.0757; c50: (0.01/0.38)^2 + (0.08/0.25)^2 = 0.1031
    assert knee(SWEEP, [0, 1, 2, 3]) == 1
    assert knee(SWEEP, [2]) == 2
    assert knee(SWEEP, []) is None


def test_recommendation_is_the_largest_share_whose_lower_bound_meets_the_target():
    rec = recommend(SWEEP, target=0.95)
    assert rec["trial"] == "c50" and rec["customer_data_percent"] == 50 and rec["rule"] == "retention_lower_bound"
    assert recommend(SWEEP, target=0.98)["trial"] == "c25"
    assert recommend(SWEEP, target=0.85)["trial"] == "c75"


def test_equal_shares_go_to_the_higher_domain_metric():
    trials = [trial("a", 50, 0.99, 0.97, 0.80), trial("b", 50, 0.99, 0.97, 0.85), trial("c", 25, 1.0, 0.99, 0.9)]
    assert recommend(trials, target=0.95)["trial"] == "b"


def test_without_a_trial_meeting_the_target_the_knee_is_recommended():
    rec = recommend(SWEEP, target=0.99)
    assert rec["trial"] == "c75" and rec["rule"] == "pareto_knee"
    assert "0.980" in rec["reason"]  # the best lower bound is named
    assert recommend([], target=0.9) is None


@pytest.mark.parametrize(("weights", "expected"), [
    ({"a": 1, "b": 1, "c": 1}, {"a": 33.4, "b": 33.3, "c": 33.3}),
    ({"a": 2, "b": 1, "c": 0}, {"a": 66.7, "b": 33.3, "c": 0.0}),
    ({"a": 0.5}, {"a": 100.0}),
])
def test_round_percents_sum_to_exactly_100_in_tenths(weights, expected):
    got = round_percents(weights)
    assert got == expected and abs(math.fsum(got.values()) - 100) < 1e-9


def test_the_default_weights_map_back_to_themselves():
    categories = ["a", "b", "c", "d"]
    for defaults in ({"a": 25, "b": 25, "c": 25, "d": 25}, {"a": 40, "b": 30, "c": 20, "d": 10}):
        params = params_for(defaults, categories)
        assert round_percents({c: -math.log(params[f"u_{c}"]) for c in categories}) == defaults
