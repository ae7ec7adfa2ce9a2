"""Filters (quality, language, exact and near-duplicate) and the seeded, stratified, leak-free split."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from mixforge.data.dedup import ExactDedup, NearDuplicates, normalize
from mixforge.data.filters import (
    ExactDedupFilter,
    FuzzyDedupFilter,
    LanguageFilter,
    Quality,
    QualityFilter,
    apply_filters,
    quality_reason,
)
from mixforge.data.rows import Row
from mixforge.data.split import assign_splits, near_duplicate_groups, parse_ratios
from mixforge.errors import ConfigError


def text_rows(texts):
    return [Row("in.jsonl", i + 1, {"id": str(i), "text": t}) for i, t in enumerate(texts)]


def document(rng: random.Random, words: int = 120) -> str:
    vocab = [f"w{i}" for i in range(2_000)]
    return " ".join(rng.choice(vocab) for _ in range(words))


def test_exact_dedup_normalizes_case_space_and_punctuation():
    seen = ExactDedup()
    assert seen.check(1, "Hello,  World!") is None
    assert seen.check(2, "hello world") == 1
    assert seen.check(3, "hello there") is None
    assert normalize("  A\tB…C ") == "a b c"


def test_near_duplicates_are_found_and_different_texts_are_not():
    rng = random.Random(0)
    a, b = document(rng), document(rng)
    words = a.split()
    words[50] = "changed"
    near = NearDuplicates(0.8)
    assert near.check("a", a) == []
    assert near.check("b", b) == []
    assert near.check("a2", " ".join(words)) == ["a"]


def test_filters_count_and_explain_what_they_drop():
    rng = random.Random(1)
    base = document(rng)
    texts = [base, base.upper(), document(rng), "x", "!!!! #### $$$$ %%%% ????", "spam " * 40,
             base.replace("w", "w", 1) + " extra", document(rng)]
    counts: dict[str, Counter] = {}
    filters = [QualityFilter(), ExactDedupFilter(), FuzzyDedupFilter(0.8)]
    kept, rejects = apply_filters(text_rows(texts), filters, counts)
    assert [r.row for r in kept] == [1, 3, 8]
    by_row = {r.row: (r.rule, r.reason) for r in rejects}
    assert by_row[2] == ("exact_dedup", "the same text as row 1 of in.jsonl")
    assert by_row[4][0] == by_row[5][0] == by_row[6][0] == "quality"
    assert "symbols" in by_row[5][1] and "'spam'" in by_row[6][1]
    assert by_row[7][0] == "fuzzy_dedup" and "row 1 of in.jsonl" in by_row[7][1]
    assert counts["quality"] == Counter(kept=5, dropped=3)
    assert counts["exact_dedup"] == Counter(kept=4, dropped=1)
    assert counts["fuzzy_dedup"] == Counter(kept=3, dropped=1)


def test_quality_limits_are_configurable_and_repeated_lines_caught():
    assert quality_reason("a\nb\na\nb\na\nb", Quality()) is not None
    assert quality_reason("one\ntwo\nthree\nfour", Quality()) is None
    assert quality_reason("short", Quality(min_chars=10)) is not None


def test_language_filter_uses_the_shipped_profiles():
    lang = LanguageFilter(["en"])
    en = "The patient was given antibiotics and recovered fully within two weeks of treatment."
    de = "Der Patient erhielt Antibiotika und erholte sich innerhalb von zwei Wochen vollständig."
    rows = text_rows([en, de, "ok"])
    assert lang.check(rows[0], en) is None
    assert "'de'" in lang.check(rows[1], de)
    assert lang.check(rows[2], "ok") is None  # too short to judge: kept


def test_ratios_are_validated():
    assert parse_ratios("0.9,0.05,0.05") == (0.9, 0.05, 0.05)
    assert parse_ratios([80, 20]) == (0.8, 0.2)
    for bad in ("0.5,0.4", "a,b", [0.5, 0.6, -0.1], [0.2] * 5):
        with pytest.raises(ConfigError):
            parse_ratios(bad)


def test_split_counts_are_exact_and_seeded():
    a = assign_splits(100, (0.9, 0.05, 0.05), seed=0)
    assert np.bincount(a).tolist() == [90, 5, 5]
    assert (assign_splits(100, (0.9, 0.05, 0.05), seed=0) == a).all()
    assert not (assign_splits(100, (0.9, 0.05, 0.05), seed=1) == a).all()


def test_split_is_stratified_by_label():
    labels = ["a"] * 60 + ["b"] * 40
    a = assign_splits(100, (0.5, 0.5), seed=3, labels=labels)
    per = Counter((lab, int(s)) for lab, s in zip(labels, a, strict=True))
    assert per == Counter({("a", 0): 30, ("a", 1): 30, ("b", 0): 20, ("b", 1): 20})


def test_groups_never_straddle_splits():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 30, size=200)
    a = assign_splits(200, (0.8, 0.1, 0.1), seed=0, groups=groups)
    for g in np.unique(groups):
        assert len(set(a[groups == g].tolist())) == 1
    assert abs(int((a == 0).sum()) - 160) < 25


def test_near_duplicate_groups_link_copies_and_chains():
    rng = random.Random(2)
    a, b = document(rng), document(rng)
    a2 = a.replace(a.split()[10], "zz", 1)
    a3 = a2.replace(a2.split()[90], "yy", 1)
    groups = near_duplicate_groups([a, b, a2, a3, b + " tail"])
    assert groups.tolist() == [0, 1, 0, 0, 1]


def test_batched_signatures_equal_datasketch_minhash():
    from datasketch import MinHash

    near = NearDuplicates(0.8)
    texts = [document(random.Random(5)), "", "two words", "Punctuation, and CASE! differ; here too."]
    for text, signature in zip(texts, near.signatures(texts), strict=True):
        reference = MinHash(num_perm=128, hashfunc=int, permutations=near.permutations, scheme="affine32")
        shingles = near.shingles(text)
        if len(shingles):
            reference.update_batch(shingles.tolist())
        assert (reference.hashvalues == signature).all()
