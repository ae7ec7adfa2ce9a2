"""Every filter drops what it should, with its own reason, and only kept records enter the dedup state."""

from __future__ import annotations

import pytest

from mixforge.replay.filters import Generation, ReplayFilters, ReplayJudge, repeated_ngram_share

MARKERS = ["<|user|>", "<|end|>", "<|assistant|>", "<|bos|>"]


def qa(answer: str, question: str = "What is the capital of France?", *, finished: bool = True) -> Generation:
    return Generation("baseline", [{"role": "user", "content": question}], answer, finished)


def judge(mode: str = "prompts", **limits) -> ReplayJudge:
    return ReplayJudge(ReplayFilters(**limits), markers=MARKERS, mode=mode)


@pytest.mark.parametrize(("gen", "limits", "reason"), [
    (qa("Paris", finished=False), {}, "truncated"),
    (qa("   \n"), {}, "empty"),
    (qa("Paris", question="  "), {}, "empty"),
    (qa("Paris"), {"min_chars": 10}, "too_short"),
    (qa("Paris " * 10), {"max_chars": 20}, "too_long"),
    (qa("the cat sat " * 8), {}, "repetition"),
    (qa("Paris<|user|>\nAnd Spain?"), {}, "template_marker"),
    (qa("Paris", question="<|assistant|>hi"), {}, "template_marker"),
    (qa("Der Hund läuft schnell über die große grüne Wiese und bellt laut."), {"languages": ("en",)}, "language"),
    (qa("I can't help with that."), {"drop_refusals": True}, "refusal"),
])
def test_each_filter_drops_what_it_should(gen, limits, reason):
    assert judge(**limits).check(gen) == reason


def test_clean_records_are_kept_and_defaults_keep_refusals_and_other_languages():
    j = judge()
    assert j.check(qa("Paris")) is None
    assert j.check(qa("I can't help with that.", question="How do I pick a lock?")) is None
    assert j.check(qa("Der Hund läuft schnell über die große grüne Wiese.", question="Say it in German")) is None


def test_instruction_truncated_in_magpie_counts_as_truncated():
    assert judge("magpie").check(qa("Paris"), instruction_finished=False) == "truncated"


def test_free_mode_keeps_cut_documents_unless_asked():
    doc = Generation("general", None, "A document that ran to the token limit", finished=False)
    assert judge("free").check(doc) is None
    assert judge("free", drop_truncated=True).check(doc) == "truncated"


def test_duplicates_exact_and_near():
    j = judge()
    long_answer = "Paris is the capital and the largest city of France, on the river Seine in the north"
    assert j.check(qa(long_answer)) is None
    assert j.check(qa(long_answer.upper() + "!")) == "duplicate"  # the same text once normalized
    assert j.check(qa(long_answer + " of the country")) == "near_duplicate"
    assert j.check(qa("Madrid", question="What is the capital of Spain?")) is None  # different enough


def test_only_kept_records_enter_the_dedup_state_and_remember_rebuilds_it():
    j = judge()
    dropped = qa("Paris<|end|>")  # dropped for the marker: never remembered
    assert j.check(dropped) == "template_marker"
    assert j.check(qa("Paris")) is None
    rebuilt = judge()
    rebuilt.remember(qa("Paris"))
    assert rebuilt.check(qa("Paris")) == "duplicate" == j.check(qa("Paris"))


def test_kept_plus_dropped_is_attempted():
    gens = [qa("Paris"), qa("Paris"), qa("x", finished=False), qa(" "), qa("Rome", question="Capital of Italy?"),
            qa("a<|user|>")]
    j = judge()
    reasons = [j.check(g) for g in gens]
    assert reasons == [None, "duplicate", "truncated", "empty", None, "template_marker"]
    kept = sum(r is None for r in reasons)
    assert kept + sum(r is not None for r in reasons) == len(gens)


def test_repeated_ngram_share_exact_values():
    assert repeated_ngram_share("a b c " * 4, 3) == pytest.approx(1 - 3 / 10)
    assert repeated_ngram_share("short text", 3) == 0.0
