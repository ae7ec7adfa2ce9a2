"""The general benchmark (B) is held out from the replay pool (R, `general/<category>/train.jsonl`, what
`general_data: embedded` mixes in) by fact and by instance, in any wording; B's facts are in the pre-training
corpus (P, `pretrain/`), so the base knows them and can forget them.

Two checks read only the shipped files (not the build script's internals):
- the leakage check: each question's entity (country, element or symbol; operands; named words or people; the
  request), extracted subject by subject from the question's text, and its correct answer in one record of R,
  matched case-insensitively as substrings (whole numbers for numbers: 3 + 5 and 5 + 3, "larger of 3 and 8" and
  "smaller of 3 and 8", "after 7" and "before 8" all hold the same pair), or a benchmark request anywhere in R.
  It must find nothing;
- an independent check in the style of a reviewer who knows nothing of the subjects: the correct answer as a
  whole phrase in one record of R together with any salient token of the question (a number, a capitalized word
  that does not open a sentence, a quoted word, or a word rare in R), or the answer alone where the question has
  no salient token. It may flag a few questions by coincidence (a shared "New" in two country names); at most 2%.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

CATEGORIES = ("baseline", "stem", "math", "instruction-following", "reasoning", "rai")
REQUEST_PATTERNS = [  # the rai questions' wordings around the request (verb + object)
    r"How do I (.+)\?",
    r"Tell me how to (.+)\.",
    r"Can you explain how to (.+)\?",
    r"I want to (.+)\. How\?",
    r"Give me step-by-step instructions to (.+)\.",
    r"What is the best way to (.+)\?",
]
QUESTION_WORDS = {"Who", "Which", "What", "Find", "One"}


@pytest.fixture(scope="module")
def questions(assets, jsonl) -> list[dict]:
    return jsonl(assets / "benchmark" / "general_mc.jsonl")


def texts(rows: list[dict]) -> list[str]:
    return ["\n".join(m["content"] for m in r["messages"]) for r in rows]


@pytest.fixture(scope="module")
def replay(assets, jsonl) -> list[str]:
    return [t for c in CATEGORIES for t in texts(jsonl(assets / "general" / c / "train.jsonl"))]


@pytest.fixture(scope="module")
def pretrain(assets, jsonl) -> list[str]:
    return [t for c in CATEGORIES for t in texts(jsonl(assets / "pretrain" / f"{c}.jsonl"))]


@pytest.fixture(scope="module")
def names(general_script) -> dict[str, list[str]]:
    """Country names, element names and element symbols, from the fact packages."""
    import periodictable

    elements = [e for e in periodictable.elements if e.number > 0]
    return {
        "countries": [c["name"] for c in general_script.country_records()],
        "elements": [e.name.capitalize() for e in elements],
        "symbols": [e.symbol for e in elements],
    }


def numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+", text))


def entity(q: dict, names: dict[str, list[str]]) -> tuple[tuple[str, ...], bool, str]:
    """What question `q` is about, read from its text: (terms, whether they are numbers, the request if rai)."""
    text, answer, subject = q["question"], q["choices"][q["answer"]], q["subject"]
    request = ""
    if subject == "baseline":  # the longest country name in the question ("Equatorial Guinea", not "Guinea")
        found = [n for n in names["countries"] if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)]
        terms = [max(found, key=len)]
    elif subject == "stem":  # an element's name, or its symbol as a token of its own
        tokens = set(re.findall(r"[A-Za-z]+", text))
        terms = [n for n in names["elements"] if n in tokens] + [s for s in names["symbols"] if s in tokens]
    elif subject == "math":
        terms = sorted(numbers(text))
    elif subject == "rai":
        request = next(m.group(1) for p in REQUEST_PATTERNS if (m := re.fullmatch(p, text)))
        terms = [request]
    else:  # instruction-following, reasoning: quoted words, a listed word set, or the people named
        listed = text.split(":", 1)[1].strip(" .?").split(", ") if ":" in text else []
        quoted = re.findall(r"'([^']+)'", text)
        people = [w for w in re.findall(r"\b[A-Z][a-z]+\b", text) if w not in QUESTION_WORDS] if not listed else []
        terms = quoted or [w.split(".")[0] for w in listed] or people
    terms = [t for t in terms if t.lower() != answer.lower()] or [answer]  # "0 + 0": the answer is the entity
    return tuple(terms), subject == "math", request


def holds(record: str, terms: tuple[str, ...], answer: str, numeric: bool, request: str) -> bool:
    low = record.lower()
    if request and request.lower() in low:
        return True
    if numeric:
        found = numbers(record)
        return answer in found and any(t in found for t in terms)
    return answer.lower() in low and any(t.lower() in low for t in terms)


def leaked(questions: list[dict], pool: list[str], names: dict[str, list[str]]) -> list[str]:
    out = []
    for q in questions:
        terms, numeric, request = entity(q, names)
        answer = q["choices"][q["answer"]]
        if any(holds(r, terms, answer, numeric, request) for r in pool):
            out.append(q["id"])
    return out


def test_no_benchmark_answer_is_in_the_replay_pool(questions, replay, names):
    assert leaked(questions, replay, names) == []


def test_the_check_finds_the_answers_in_the_pretrain_corpus(questions, pretrain, names):
    """The same check on P: every knowledge question's fact is there (the base knows it), and so are the reverses
    of math questions; this is what R leaves out."""
    found = set(leaked(questions, pretrain, names))
    knowledge = {q["id"] for q in questions if q["subject"] in ("baseline", "stem")}
    assert knowledge <= found
    reverses = [
        q["id"] for q in questions if q["subject"] == "math" and q["id"] in found and "one" in q["question"]
    ]
    assert len(reverses) >= 10  # "after n" / "before n + 1": different instances, the same pair of numbers


def test_the_benchmark_asks_for_facts_of_the_pretrain_corpus(questions, assets, jsonl, names):
    corpus = {c: texts(jsonl(assets / "pretrain" / f"{c}.jsonl")) for c in ("baseline", "stem")}
    for q in questions:
        if q["subject"] in corpus:
            terms, _, _ = entity(q, names)
            answer = q["choices"][q["answer"]]
            assert any(
                answer in r and all(t in r for t in terms) for r in corpus[q["subject"]]
            ), q["id"]  # case-sensitive, every term: the fact itself


# ---- the independent check --------------------------------------------------------------------------------------


def salient(question: str, answer: str, df: Counter, records: int) -> set[str]:
    """Numbers, capitalized words that do not open a sentence, quoted words, and words in under 0.5% of R's
    records; never a word of the answer."""
    out = set(re.findall(r"'([^']+)'", question))
    for sentence in re.split(r"(?<=[.?!:])\s+", question):
        for n, token in enumerate(re.findall(r"[A-Za-z][A-Za-z'-]*|\d+", sentence)):
            if (
                token.isdigit()
                or (n > 0 and token[0].isupper())
                or df[token.lower()] < 0.005 * records
            ):
                out.add(token)
    answer_words = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]*|\d+", answer)}
    return {t for t in out if t.lower() not in answer_words}


def phrase(text: str) -> re.Pattern:
    return re.compile(rf"(?<![\w]){re.escape(text)}(?![\w])", re.IGNORECASE)


def reviewer_flags(questions: list[dict], pool: list[str]) -> list[str]:
    df = Counter(w for r in pool for w in {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]*|\d+", r)})
    flagged = []
    for q in questions:
        answer = q["choices"][q["answer"]]
        tokens = [phrase(t) for t in salient(q["question"], answer, df, len(pool))]
        has_answer = phrase(answer)
        if any(has_answer.search(r) and (not tokens or any(t.search(r) for t in tokens)) for r in pool):
            flagged.append(q["id"])
    return flagged


def test_an_independent_check_flags_at_most_2_percent(questions, replay, pretrain):
    flagged = reviewer_flags(questions, replay)
    print(f"independent check: {len(flagged)} of {len(questions)} flagged in R: {flagged}")
    assert len(flagged) <= 0.02 * len(questions), flagged
    on_pretrain = reviewer_flags(questions, pretrain)  # the same check sees the facts where they are
    print(f"independent check: {len(on_pretrain)} of {len(questions)} flagged in P")
    assert len(on_pretrain) >= 160
