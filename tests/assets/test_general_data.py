"""The shipped general data and benchmark: well-formed, rebuilt byte for byte by the script, pools disjoint,
benchmark built only from held-out items with balanced answers, in dev and test halves; the pre-training corpus is
the one the shipped base model was trained on. (Leakage between the benchmark and the replay pool:
test_leakage.py.)"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter

import pytest

CATEGORIES = ("baseline", "stem", "math", "instruction-following", "reasoning", "rai")
SKILLS = ("math", "instruction-following", "reasoning", "rai")
KNOWLEDGE = ("baseline", "stem")


def prompts(rows: list[dict]) -> set[str]:
    return {r["messages"][0]["content"] for r in rows}


@pytest.fixture(scope="module")
def pools(assets, jsonl) -> dict[str, dict[str, list[dict]]]:
    return {
        c: {split: jsonl(assets / "general" / c / f"{split}.jsonl") for split in ("train", "heldout")}
        for c in CATEGORIES
    }


@pytest.fixture(scope="module")
def pretrain(assets, jsonl) -> dict[str, list[dict]]:
    return {c: jsonl(assets / "pretrain" / f"{c}.jsonl") for c in CATEGORIES}


@pytest.fixture(scope="module")
def questions(assets, jsonl) -> list[dict]:
    return jsonl(assets / "benchmark" / "general_mc.jsonl")


def test_every_category_ships_chat_records(pools):
    ids = set()
    for category, splits in pools.items():
        for split, rows in splits.items():
            assert len(rows) >= (100 if split == "heldout" else 300), (category, split, len(rows))
            for row in rows:
                assert set(row) == {"id", "messages"}
                user, assistant = row["messages"]
                assert (user["role"], assistant["role"]) == ("user", "assistant")
                assert user["content"].strip() and assistant["content"].strip()
                assert row["id"].startswith(f"{category}-{split}-")
                ids.add(row["id"])
    assert len(ids) == sum(len(rows) for splits in pools.values() for rows in splits.values())  # ids unique


def test_no_heldout_question_is_in_training(pools, pretrain):
    for category, splits in pools.items():
        assert not prompts(pretrain[category]) & prompts(splits["heldout"]), category


def test_skill_instances_are_disjoint_and_knowledge_is_asked_in_a_new_phrasing(general_script):
    for n, category in enumerate(CATEGORIES):
        train, heldout = general_script.GENERATORS[category](random.Random(n))
        if category in SKILLS:  # a new instance: operands, words, names or request never trained on
            assert not {i.key for i in train} & {i.key for i in heldout}, category
        else:  # one of five phrasings per fact held out; its fact was trained on in the other four
            facts = Counter(i.key.rsplit(":t", 1)[0] for i in train)
            assert set(facts.values()) == {4}
            assert {i.key.rsplit(":t", 1)[0] for i in heldout} == set(facts)


def instance_parts(items, *, skip_kind: str = "") -> set[str]:
    """The words or names an item's key lists (`kind:a,b,c`)."""
    return {p for i in items if i.kind != skip_kind for p in i.key.split(":", 1)[1].split(",")}


def test_heldout_words_and_names_never_appear_in_training(general_script):
    train, heldout = general_script.instruction_following(random.Random(0))
    assert instance_parts(heldout) and not instance_parts(train) & instance_parts(heldout)
    train, heldout = general_script.reasoning(random.Random(0))
    people_train = instance_parts(train, skip_kind="odd-one-out")
    people_heldout = instance_parts(heldout, skip_kind="odd-one-out")
    assert people_heldout and not people_train & people_heldout


def test_facts_come_from_the_packages(pretrain, general_script):
    countryinfo = pytest.importorskip("countryinfo")
    periodictable = pytest.importorskip("periodictable")
    answers = {r["messages"][0]["content"]: r["messages"][1]["content"] for r in pretrain["baseline"]}
    answers |= {r["messages"][0]["content"]: r["messages"][1]["content"] for r in pretrain["stem"]}
    france = countryinfo.CountryInfo("France").capital()
    iron = periodictable.elements.symbol("Fe")
    capital_asked = [a for q, a in answers.items() if q.endswith(" France?") and "capital" in q]
    assert capital_asked and set(capital_asked) == {france}
    assert {a for q, a in answers.items() if "symbol" in q and q.endswith(" Iron?")} == {iron.symbol}


def test_rebuild_is_byte_identical(general_script, assets, tmp_path):
    general_script.build(tmp_path, seed=0)
    rels = [f"general/{c}/{split}.jsonl" for c in CATEGORIES for split in ("train", "heldout")]
    rels += [f"pretrain/{c}.jsonl" for c in CATEGORIES]
    rels += [f"benchmark/general_mc{half}.jsonl" for half in ("", ".dev", ".test")]
    for rel in rels:
        assert (tmp_path / rel).read_bytes() == (assets / rel).read_bytes(), rel


def test_another_seed_gives_other_data(general_script, assets, tmp_path):
    general_script.build(tmp_path, seed=1)
    assert (tmp_path / "pretrain/math.jsonl").read_bytes() != (assets / "pretrain/math.jsonl").read_bytes()


def test_benchmark_is_mmlu_shaped_and_balanced(questions):
    assert 400 <= len(questions) <= 600
    assert len({q["id"] for q in questions}) == len(questions)
    for q in questions:
        assert set(q) == {"id", "question", "choices", "answer", "subject", "split"}
        assert len(q["choices"]) == 4 and len(set(q["choices"])) == 4, q
        assert q["answer"] in range(4) and q["subject"] in CATEGORIES
    subjects = Counter(q["subject"] for q in questions)
    assert set(subjects) == set(CATEGORIES) and len(set(subjects.values())) == 1
    # dev and test halves: stratified by subject, the answer at each position equally often in each
    halves = Counter((q["subject"], q["split"]) for q in questions)
    assert set(halves.values()) == {len(questions) // 12} and {s for _, s in halves} == {"dev", "test"}
    for subject in CATEGORIES:
        for half in ("dev", "test"):
            positions = Counter(q["answer"] for q in questions if (q["subject"], q["split"]) == (subject, half))
            assert set(positions.values()) == {len(questions) // 48}, (subject, half, positions)


def test_halves_are_the_two_files(assets, jsonl, questions):
    for half in ("dev", "test"):
        assert jsonl(assets / f"benchmark/general_mc.{half}.jsonl") == [q for q in questions if q["split"] == half]


def test_benchmark_is_built_only_from_heldout_items(questions, pools, pretrain, general_script):
    refusals, unseen = set(general_script.REFUSALS), set(general_script.REFUSALS_HELDOUT)
    trained_answers = {r["messages"][1]["content"] for rows in pretrain.values() for r in rows}
    assert refusals <= trained_answers and not unseen & trained_answers  # the benchmark's refusals: never trained
    harmful = 0
    for q in questions:
        heldout = {
            r["messages"][0]["content"]: r["messages"][1]["content"] for r in pools[q["subject"]]["heldout"]
        }
        assert q["question"] in heldout, q["id"]
        if heldout[q["question"]] in refusals:  # a harmful request: refusing in an unseen wording is correct
            harmful += 1
            assert q["choices"][q["answer"]] in unseen, q["id"]
            assert not set(q["choices"]) - {q["choices"][q["answer"]]} & (refusals | unseen), q["id"]
        else:
            assert q["choices"][q["answer"]] == heldout[q["question"]], q["id"]
        assert q["question"] not in prompts(pretrain[q["subject"]])
    assert harmful == 40


def test_pretrain_corpus_is_what_the_shipped_base_was_trained_on(assets, pretrain):
    scores = json.loads((assets / "models/mixforge-tiny-base/scores.json").read_text(encoding="utf-8"))
    shipped = {c: hashlib.sha256((assets / f"pretrain/{c}.jsonl").read_bytes()).hexdigest() for c in CATEGORIES}
    assert shipped == scores["pretrain_sha256"]
    assert shipped["baseline"] == "599bf82c4387e202033210f65e2710b32649d52c1ce1b2712696a5ce6e63a463"  # trained on
    assert sum(len(rows) for rows in pretrain.values()) == scores["train"]["records"] == 15434


def test_replay_pool_is_part_of_the_pretrain_corpus_not_all_of_it(pools, pretrain):
    for category in CATEGORIES:
        corpus = {r["id"]: r for r in pretrain[category]}
        replay = pools[category]["train"]
        assert all(corpus[r["id"]] == r for r in replay), category  # the same records, the same ids
        assert [r["id"] for r in replay] == sorted(r["id"] for r in replay)
    assert sum(len(s["train"]) for s in pools.values()) < sum(len(rows) for rows in pretrain.values())


def test_choice_length_does_not_give_the_answer_away(questions):
    for pick in (min, max):  # always choosing the shortest (or longest) choice stays near chance
        hits = sum(pick(range(4), key=lambda i, q=q: len(q["choices"][i])) == q["answer"] for q in questions)
        assert hits / len(questions) < 0.35, pick.__name__
