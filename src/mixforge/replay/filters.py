"""Which self-generated records are kept: each generation is judged once, kept or dropped with one reason.

    judge = ReplayJudge(ReplayFilters(), markers=info.reserved_strings)
    reason = judge.check(generation)      # None: keep (and it is remembered for dedup), else the reason

Reasons, checked cheapest first (the first that applies is the one counted):
    truncated        no end-of-turn or EOS before the token limit (the instruction's, in magpie mode)
    empty            nothing but whitespace (instruction or answer)
    too_short        fewer characters than `min_chars` (the answer, or the text in free mode)
    too_long         more characters than `max_chars`
    repetition       too many repeated word n-grams (a model stuck in a loop)
    template_marker  a special token or a role marker of the model's chat template inside the text
    language         langdetect finds a language outside `languages` (off unless languages are given)
    refusal          the answer opens like a refusal (off unless `drop_refusals`)
    duplicate        the same normalized text as a kept record (`mixforge.data.dedup.normalize`)
    near_duplicate   MinHash Jaccard >= `near_dup_threshold` with a kept record (`mixforge.data.dedup`)

Only kept records enter the dedup state, so a resumed generation rebuilds it exactly by replaying the kept
records of its finished shards through `remember`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

REASONS = ("truncated", "empty", "too_short", "too_long", "repetition", "template_marker", "language", "refusal",
           "duplicate", "near_duplicate")

# How answers open when a model declines; matched at the start of the answer, case-insensitively.
_REFUSAL = re.compile(
    r"^\s*(i\s*(can(?:no|')t|cannot|won't|will not|am (?:not able|unable)|'m (?:not able|unable|sorry))|"
    r"sorry|as an ai\b|i apologi[sz]e)", re.IGNORECASE)


@dataclass(frozen=True)
class Generation:
    """One attempt: what the model wrote, and whether each part ended on its own."""

    category: str
    prompt: list[dict[str, str]] | None  # the turns answered (prompts and magpie); None in free mode
    text: str  # the answer (prompts, magpie) or the document (free)
    finished: bool  # the answer (or document) ended with an end-of-turn / EOS token
    tokens: int = 0  # generated tokens, instruction included (for tokens/s)

    def record(self, rid: str) -> dict:
        """The canonical record: {"id", "messages", "category"} or {"id", "text", "category"}."""
        if self.prompt is None:
            return {"id": rid, "text": self.text, "category": self.category}
        return {"id": rid, "messages": [*self.prompt, {"role": "assistant", "content": self.text}],
                "category": self.category}

    def all_text(self) -> str:
        turns = [m["content"] for m in self.prompt or []]
        return "\n".join([*turns, self.text])


@dataclass(frozen=True)
class ReplayFilters:
    """Limits of the filters. Lenient defaults: a replay record only has to be a complete, clean answer."""

    drop_truncated: bool | None = None  # None: drop truncated answers, except in free mode (documents are cut)
    min_chars: int = 1
    max_chars: int = 20_000
    ngram: int = 3  # words per n-gram of the repetition check
    max_repeated_ngrams: float = 0.5  # share of n-grams that repeat an earlier one (texts of >= 12 words)
    near_dup_threshold: float | None = 0.9  # None turns near-duplicate removal off
    languages: tuple[str, ...] = ()  # e.g. ("en",); empty: no language filter
    drop_refusals: bool = False  # a replay of the base's refusals is usually wanted (safety behaviour)

    def settings(self) -> dict:
        """The limits as plain JSON (part of the cache key and the manifest)."""
        return {"drop_truncated": self.drop_truncated, "min_chars": self.min_chars, "max_chars": self.max_chars,
                "ngram": self.ngram, "max_repeated_ngrams": self.max_repeated_ngrams,
                "near_dup_threshold": self.near_dup_threshold, "languages": list(self.languages),
                "drop_refusals": self.drop_refusals}


def repeated_ngram_share(text: str, n: int) -> float:
    """Share of the word n-grams of `text` that repeat an earlier one (0.0 for fewer than 12 words)."""
    words = text.lower().split()
    if len(words) < 12:
        return 0.0
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams)


def leaked_marker(text: str, markers: list[str]) -> str | None:
    """The first template marker (special token or role marker) found in `text`, or None."""
    return next((m for m in markers if m and m in text), None)


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.match(text))


class ReplayJudge:
    """Applies `ReplayFilters` to generations in order, remembering the kept ones for dedup."""

    def __init__(self, filters: ReplayFilters, *, markers: list[str], mode: str) -> None:
        from mixforge.data.dedup import NearDuplicates

        self.filters = filters
        self.markers = sorted({m for m in markers if m.strip()}, key=lambda s: (-len(s), s))
        self.drop_truncated = filters.drop_truncated if filters.drop_truncated is not None else mode != "free"
        self._exact: set[int] = set()
        # short answers need short shingles: 2-word n-grams still separate "capital of France" from "... Spain"
        self._near = (NearDuplicates(filters.near_dup_threshold, ngram=2)
                      if filters.near_dup_threshold is not None else None)
        self._kept = 0
        self._detector = None
        if filters.languages:
            from langdetect import DetectorFactory

            DetectorFactory.seed = 0  # langdetect samples at random: a fixed seed makes it deterministic

    def check(self, gen: Generation, *, instruction_finished: bool = True) -> str | None:
        """None to keep `gen` (it is then remembered), else the reason it is dropped (one of REASONS)."""
        reason = self._reason(gen, instruction_finished)
        if reason is None:  # the near-duplicate index took it in already (its check is the last one)
            self._exact.add(self._digest(gen))
            self._kept += 1
        return reason

    def _reason(self, gen: Generation, instruction_finished: bool) -> str | None:
        f = self.filters
        if not instruction_finished or (self.drop_truncated and not gen.finished):
            return "truncated"
        user = [m["content"] for m in gen.prompt or [] if m["role"] == "user"]
        if not gen.text.strip() or any(not u.strip() for u in user):
            return "empty"
        size = len(gen.text.strip())
        if size < f.min_chars:
            return "too_short"
        if size > f.max_chars:
            return "too_long"
        if repeated_ngram_share(gen.text, f.ngram) > f.max_repeated_ngrams:
            return "repetition"
        if leaked_marker(gen.all_text(), self.markers) is not None:
            return "template_marker"
        if f.languages and not self._language_ok(gen.text):
            return "language"
        if f.drop_refusals and gen.prompt is not None and is_refusal(gen.text):
            return "refusal"
        if self._digest(gen) in self._exact:
            return "duplicate"
        if self._near is not None:  # last: a text with no near-duplicate is indexed as it passes
            signature = self._near.signatures([gen.all_text()])[0]
            if self._near.check_signature(self._kept, signature, index_duplicates=False):
                return "near_duplicate"
        return None

    def remember(self, gen: Generation) -> None:
        """Add a kept generation to the dedup state (also used to rebuild it when a generation resumes)."""
        self._exact.add(self._digest(gen))
        if self._near is not None:
            signature = self._near.signatures([gen.all_text()])[0]
            self._near.check_signature(self._kept, signature, index_duplicates=True)
        self._kept += 1

    @staticmethod
    def _digest(gen: Generation) -> int:
        import xxhash

        from mixforge.data.dedup import normalize

        return xxhash.xxh3_128_intdigest(normalize(gen.all_text()).encode("utf-8"))

    def _language_ok(self, text: str) -> bool:
        from langdetect import detect
        from langdetect.lang_detect_exception import LangDetectException

        if len(text.strip()) < 20:
            return True  # too short to tell
        try:
            found = detect(text[:1_000])
        except LangDetectException:
            return True
        return found.lower() in {x.lower() for x in self.filters.languages}


def count_reasons(reasons: list[str | None]) -> Counter[str]:
    return Counter(r for r in reasons if r is not None)
