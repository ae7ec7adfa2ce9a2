"""Pure metric functions: label normalization, classification report (F1 variants, per class, confusions),
exact match and token F1 for generative QA, and the paired bootstrap used by the forgetting report.

Conventions follow scikit-learn's so figures can be compared: macro and weighted F1 average over the labels
that occur in gold or predictions (a label nobody used and nobody predicted does not count); micro F1 over
single-label data equals accuracy; a class with no prediction has precision 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

Normalize = Literal["none", "strip", "casefold"]


def normalize_label(label: str, mode: Normalize = "casefold") -> str:
    """none: as is; strip: trim and collapse inner whitespace to one space; casefold: strip, then casefold."""
    if mode == "none":
        return label
    label = " ".join(label.split())
    return label.casefold() if mode == "casefold" else label


def classification_report(
    gold: Sequence[str], pred: Sequence[str], *, top_confusions: int = 10
) -> dict[str, Any]:
    """Accuracy, macro/micro/weighted F1, per-class precision/recall/F1/support and the most frequent
    confusions (gold, predicted, count), most frequent first, ties by name."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items, pred {len(pred)}")
    n = len(gold)
    labels = sorted(set(gold) | set(pred))
    support = Counter(gold)
    predicted = Counter(pred)
    true_pos = Counter(g for g, p in zip(gold, pred, strict=True) if g == p)
    per_class: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = true_pos[label]
        precision = tp / predicted[label] if predicted[label] else 0.0
        recall = tp / support[label] if support[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support[label]}
    accuracy = sum(true_pos.values()) / n if n else 0.0
    macro = float(np.mean([c["f1"] for c in per_class.values()])) if labels else 0.0
    weighted = sum(c["f1"] * c["support"] for c in per_class.values()) / n if n else 0.0
    confusions = Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p)
    top = sorted(confusions.items(), key=lambda kv: (-kv[1], kv[0]))[:top_confusions]
    return {
        "accuracy": accuracy,
        "macro_f1": macro,
        "micro_f1": accuracy,  # single-label: micro precision = micro recall = accuracy
        "weighted_f1": weighted,
        "per_class": per_class,
        "confusions": [{"gold": g, "pred": p, "count": c} for (g, p), c in top],
    }


def macro_f1_indices(gold: np.ndarray, pred: np.ndarray, n_labels: int) -> float:
    """Macro F1 of integer-coded labels (fast path for the bootstrap); same convention as above."""
    tp = np.bincount(gold[gold == pred], minlength=n_labels)
    support = np.bincount(gold, minlength=n_labels)
    predicted = np.bincount(pred, minlength=n_labels)
    present = (support + predicted) > 0
    denom = support + predicted  # F1 = 2 tp / (support + predicted)
    f1 = np.divide(2 * tp, denom, out=np.zeros(n_labels), where=denom > 0)
    return float(f1[present].mean()) if present.any() else 0.0


# ---- generative QA (SQuAD's normalization) -------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and English articles, collapse whitespace (SQuAD's rule)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(a) for a in answers))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """The best token-overlap F1 of the prediction against any reference answer."""
    best = 0.0
    pred_tokens = normalize_answer(prediction).split()
    for answer in answers:
        gold_tokens = normalize_answer(answer).split()
        if not pred_tokens or not gold_tokens:
            best = max(best, float(pred_tokens == gold_tokens))
            continue
        common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
        if common:
            precision, recall = common / len(pred_tokens), common / len(gold_tokens)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# ---- paired bootstrap ----------------------------------------------------------------------------------------


def paired_bootstrap(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """(point estimate, low, high): `statistic(indices)` evaluated on all `n` items, then on `n_resamples`
    resamples of the same item indices with replacement (the percentile interval).

    Paired: the statistic sees one index array and applies it to every system it compares, so each
    resample draws the same questions for the base and the tuned model.
    """
    if n <= 0:
        raise ValueError("the bootstrap needs at least one item")
    rng = np.random.default_rng(seed)
    point = statistic(np.arange(n))
    values = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(n_resamples)], dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return point, float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(point), float(low), float(high)
