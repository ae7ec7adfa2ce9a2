"""Metrics against hand-computed figures (and scikit-learn's, when it is installed)."""

from __future__ import annotations

import numpy as np
import pytest

from mixforge.eval.metrics import (
    classification_report,
    exact_match,
    macro_f1_indices,
    normalize_label,
    paired_bootstrap,
    token_f1,
)

# confusion matrix (rows gold, columns pred) over cat, dog, fox:
#        cat dog fox
#   cat   2   1   0
#   dog   0   1   1
#   fox   1   0   0      (+ one "emu" prediction for a gold dog)
GOLD = ["cat", "cat", "cat", "dog", "dog", "dog", "fox"]
PRED = ["cat", "cat", "dog", "dog", "fox", "emu", "cat"]


def test_classification_report_matches_hand_computed_confusion_matrix():
    r = classification_report(GOLD, PRED)
    # cat: tp 2, predicted 3, support 3 -> P 2/3, R 2/3, F1 2/3
    # dog: tp 1, predicted 2, support 3 -> P 1/2, R 1/3, F1 0.4
    # fox: tp 0 -> F1 0; emu: never gold, predicted once -> F1 0
    assert r["per_class"]["cat"]["f1"] == pytest.approx(2 / 3)
    assert r["per_class"]["dog"]["precision"] == pytest.approx(0.5)
    assert r["per_class"]["dog"]["recall"] == pytest.approx(1 / 3)
    assert r["per_class"]["dog"]["f1"] == pytest.approx(0.4)
    assert r["per_class"]["fox"]["f1"] == 0 and r["per_class"]["emu"]["support"] == 0
    assert r["accuracy"] == pytest.approx(3 / 7)
    assert r["micro_f1"] == pytest.approx(3 / 7)
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.4 + 0 + 0) / 4)
    assert r["weighted_f1"] == pytest.approx((2 / 3 * 3 + 0.4 * 3 + 0 * 1) / 7)
    # four distinct confusions, each once, ordered by name for ties
    assert r["confusions"][0] == {"gold": "cat", "pred": "dog", "count": 1}
    assert len(r["confusions"]) == 4


def test_classification_report_agrees_with_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    r = classification_report(GOLD, PRED)
    assert r["macro_f1"] == pytest.approx(metrics.f1_score(GOLD, PRED, average="macro", zero_division=0))
    assert r["weighted_f1"] == pytest.approx(metrics.f1_score(GOLD, PRED, average="weighted", zero_division=0))
    assert r["micro_f1"] == pytest.approx(metrics.f1_score(GOLD, PRED, average="micro", zero_division=0))


def test_macro_f1_fast_path_equals_report():
    codes = {c: i for i, c in enumerate(sorted(set(GOLD) | set(PRED)))}
    g, p = np.array([codes[x] for x in GOLD]), np.array([codes[x] for x in PRED])
    assert macro_f1_indices(g, p, len(codes)) == pytest.approx(classification_report(GOLD, PRED)["macro_f1"])


def test_normalize_label_modes():
    assert normalize_label("  Billing   Address ", "none") == "  Billing   Address "
    assert normalize_label("  Billing   Address ", "strip") == "Billing Address"
    assert normalize_label("  Billing   Address ", "casefold") == "billing address"


def test_exact_match_and_token_f1():
    assert exact_match("The Eiffel Tower!", ["eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["eiffel tower"]) == 0.0
    # pred tokens [eiffel], gold [eiffel, tower]: P 1, R 1/2 -> F1 2/3
    assert token_f1("Eiffel", ["eiffel tower"]) == pytest.approx(2 / 3)
    assert token_f1("paris", ["london", "Paris."]) == 1.0
    assert token_f1("", ["x"]) == 0.0


def test_paired_bootstrap_identical_systems_have_a_degenerate_interval():
    values = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    point, low, high = paired_bootstrap(lambda i: values[i].mean() - values[i].mean(), 5, n_resamples=200)
    assert (point, low, high) == (0.0, 0.0, 0.0)
    a = paired_bootstrap(lambda i: values[i].mean(), 5, n_resamples=200, seed=3)
    assert a == paired_bootstrap(lambda i: values[i].mean(), 5, n_resamples=200, seed=3)
    assert a[0] == pytest.approx(0.6) and a[1] <= 0.6 <= a[2] and a[1] < a[2]
