"""The shipped domain task: raw rows with taxonomy labels, splits disjoint and complete, rebuilt byte for byte,
learnable but not separable by a bag of words alone."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

import pytest

SPLITS = {"train": 4000, "validation": 500, "test": 1000}


@pytest.fixture(scope="module")
def domain(assets, jsonl) -> dict[str, list[dict]]:
    return {split: jsonl(assets / "domain" / f"{split}.jsonl") for split in SPLITS}


@pytest.fixture(scope="module")
def labels(assets) -> list[str]:
    return (assets / "domain" / "labels.txt").read_text(encoding="utf-8").splitlines()


def test_labels_form_a_two_level_taxonomy_of_at_least_100_leaves(labels):
    assert len(labels) >= 100 and len(set(labels)) == len(labels)
    tops = Counter()
    for label in labels:
        top, leaf = label.split(" > ")
        assert top.strip() == top and leaf.strip() == leaf and top and leaf
        tops[top] += 1
    assert len(tops) >= 8 and min(tops.values()) >= 5


def test_splits_are_raw_rows_with_known_labels(domain, labels):
    known = set(labels)
    for split, rows in domain.items():
        assert len(rows) == SPLITS[split]
        assert len({r["id"] for r in rows}) == len(rows)
        for row in rows:
            assert set(row) == {"id", "feedback", "label"}
            assert row["label"] in known and len(row["feedback"]) >= 10
        assert {r["label"] for r in rows} == known, f"{split} lacks a label: macro-F1 needs every label"


def test_no_feedback_in_two_splits(domain):
    key = lambda text: re.sub(r"\W+", " ", text.lower()).strip()  # noqa: E731
    seen = [{key(r["feedback"]) for r in rows} for rows in domain.values()]
    assert sum(len(s) for s in seen) == sum(SPLITS.values())  # also no duplicate inside a split


def test_rows_vary(domain):
    train = domain["train"]
    assert len({r["feedback"].split(" ")[0] for r in train}) > 30  # openers, contexts, noise
    lowered = sum(r["feedback"] == r["feedback"].lower() for r in train) / len(train)
    assert 0.1 < lowered < 0.4


def test_rebuild_is_byte_identical(domain_script, assets, tmp_path):
    domain_script.build(tmp_path, seed=0)
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl", "labels.txt"):
        assert (tmp_path / name).read_bytes() == (assets / "domain" / name).read_bytes(), name


def naive_bayes_accuracy(train: list[dict], test: list[dict]) -> float:
    words = lambda text: re.findall(r"[a-z']+", text.lower())  # noqa: E731
    counts: dict[str, Counter] = defaultdict(Counter)
    prior = Counter(r["label"] for r in train)
    for r in train:
        counts[r["label"]].update(words(r["feedback"]))
    vocab = len({w for c in counts.values() for w in c})
    totals = {label: sum(c.values()) for label, c in counts.items()}

    def predict(text: str) -> str:
        ws = words(text)
        return max(
            counts,
            key=lambda lab: (
                math.log(prior[lab]) + sum(math.log((counts[lab][w] + 1) / (totals[lab] + vocab)) for w in ws)
            ),
        )

    return sum(predict(r["feedback"]) == r["label"] for r in test) / len(test)


def test_learnable_but_not_separable_by_words_alone(domain):
    accuracy = naive_bayes_accuracy(domain["train"], domain["validation"])
    assert 0.5 < accuracy < 0.97, accuracy  # measured 0.90 on the test split at seed 0
