"""Row filters. Each one looks at a record's text and returns None (keep) or the reason to drop it; dropped
rows go to the rejects file with that reason, and every filter counts what it kept and dropped.

    quality      length, symbol ratio and repetition limits (`Quality`), lenient by default
    language     langdetect (its language profiles ship inside the package: nothing is downloaded)
    exact_dedup  normalized-text hash; the first copy wins
    fuzzy_dedup  MinHash LSH near-duplicates (datasketch), threshold configurable

They run cheapest first: quality, language, exact, fuzzy. Dedup and language filters keep state, so one
instance must see the whole stream.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mixforge.data.dedup import ExactDedup, NearDuplicates
from mixforge.data.rows import Reject, Row, preview


def record_text(record: dict[str, Any]) -> str:
    """The text a filter judges: all turns of a conversation, the text, or prompt + chosen answer."""
    if isinstance(record.get("messages"), list):
        return "\n".join(m.get("content", "") for m in record["messages"] if isinstance(m, dict))
    if isinstance(record.get("text"), str):
        return record["text"]
    prompt = record.get("prompt") or []
    parts = [m.get("content", "") for m in prompt if isinstance(m, dict)]
    return "\n".join([*parts, str(record.get("chosen", ""))])


class RowFilter(Protocol):
    name: str

    def begin_batch(self, texts: list[str]) -> None:
        """Called with the texts of a batch before its rows are checked (batch work such as MinHash)."""
        ...

    def check(self, row: Row, text: str) -> str | None:
        """None to keep the row, else the reason it is dropped."""
        ...


class _PerRow:
    """Filters that look at one row at a time have nothing to do per batch."""

    def begin_batch(self, texts: list[str]) -> None:
        return None


@dataclass(frozen=True)
class Quality:
    """Limits of the default quality filter; each applies to the record's whole text."""

    min_chars: int = 2  # shorter than this is not a training example
    max_chars: int = 2_000_000
    max_symbol_ratio: float = 0.5  # characters that are neither letters, digits nor whitespace
    max_repeated_line_ratio: float = 0.5  # characters in lines that occur more than once (>= 4 lines)
    max_top_word_ratio: float = 0.5  # the most common word's share of all words (>= 20 words)


_NOT_SYMBOL = re.compile(r"[\w\s]+")
_ASCII_SYMBOLS = bytes(c for c in range(128) if not (chr(c).isalnum() or chr(c).isspace() or chr(c) == "_"))


def quality_reason(text: str, q: Quality) -> str | None:
    """Why `text` fails the quality limits, or None."""
    n = len(text.strip())
    if n < q.min_chars:
        return f"{n} characters; the minimum is {q.min_chars}"
    if n > q.max_chars:
        return f"{n:,} characters; the maximum is {q.max_chars:,}"
    sample = text if n <= 20_000 else text[:20_000]
    if sample.isascii():  # bytes.translate deletes the ASCII symbols at C speed (7x the regex)
        symbols = len(sample) - len(sample.encode("ascii").translate(None, _ASCII_SYMBOLS))
    else:
        symbols = len(_NOT_SYMBOL.sub("", sample))  # what is left once letters, digits, '_' and spaces are gone
    if symbols / max(1, len(sample)) > q.max_symbol_ratio:
        return f"{symbols / len(sample):.0%} symbols; the maximum is {q.max_symbol_ratio:.0%}"
    lines = [ln.strip() for ln in sample.splitlines() if ln.strip()]
    if len(lines) >= 4:
        counts = Counter(lines)
        repeated = sum(len(ln) * c for ln, c in counts.items() if c > 1)
        total = sum(len(ln) for ln in lines)
        if repeated / total > q.max_repeated_line_ratio:
            return f"{repeated / total:.0%} of the text is repeated lines; the maximum is {q.max_repeated_line_ratio:.0%}"
    words = sample[:1_000].lower().split()  # repetition shows in any window; splitting all of it costs 4x
    if len(words) >= 20 and len(set(words)) <= len(words) * (1 - q.max_top_word_ratio) + 1:
        word, count = Counter(words).most_common(1)[0]
        if count / len(words) > q.max_top_word_ratio:
            return f"the word {word!r} is {count / len(words):.0%} of all words; the maximum is {q.max_top_word_ratio:.0%}"
    return None


class QualityFilter(_PerRow):
    name = "quality"

    def __init__(self, quality: Quality | None = None) -> None:
        self.quality = quality or Quality()

    def check(self, row: Row, text: str) -> str | None:
        reason = quality_reason(text, self.quality)
        return f"low quality: {reason}" if reason else None


class LanguageFilter(_PerRow):
    """Keep rows detected as one of `languages` (ISO 639-1 codes as langdetect reports them: en, de, zh-cn ...).
    Texts shorter than `min_chars` are kept: too short to tell."""

    name = "language"

    def __init__(self, languages: list[str], *, min_chars: int = 20, sample_chars: int = 1_000) -> None:
        from langdetect import DetectorFactory

        DetectorFactory.seed = 0  # langdetect samples at random: a fixed seed makes it deterministic
        self.languages = {x.lower() for x in languages}
        self.min_chars, self.sample_chars = min_chars, sample_chars

    def check(self, row: Row, text: str) -> str | None:
        from langdetect import detect
        from langdetect.lang_detect_exception import LangDetectException

        if len(text.strip()) < self.min_chars:
            return None
        try:
            found = detect(text[: self.sample_chars])
        except LangDetectException:
            return None  # no letters to judge by
        if found.lower() not in self.languages:
            return f"language {found!r}, not one of {', '.join(sorted(self.languages))}"
        return None


class _Keys:
    """(file, row) <-> one int, so dedup state costs an int a row rather than a tuple."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self._index: dict[str, int] = {}

    def key(self, row: Row) -> int:
        i = self._index.get(row.file)
        if i is None:
            i = self._index[row.file] = len(self.files)
            self.files.append(row.file)
        return (i << 40) | row.row

    def where(self, key: int) -> str:
        return f"row {key & ((1 << 40) - 1)} of {self.files[key >> 40]}"


class ExactDedupFilter(_PerRow):
    name = "exact_dedup"

    def __init__(self) -> None:
        self._seen = ExactDedup()
        self._keys = _Keys()

    def check(self, row: Row, text: str) -> str | None:
        first = self._seen.check(self._keys.key(row), text)
        return None if first is None else f"the same text as {self._keys.where(first)}"  # type: ignore[arg-type]


class FuzzyDedupFilter:
    name = "fuzzy_dedup"

    def __init__(self, threshold: float = 0.8, *, num_perm: int = 128, ngram: int = 5) -> None:
        self._near = NearDuplicates(threshold, num_perm=num_perm, ngram=ngram)
        self._keys = _Keys()
        self._batch: dict[int, np.ndarray] = {}  # id(text) -> signature, for the batch being checked

    def begin_batch(self, texts: list[str]) -> None:
        self._batch = {id(t): sig for t, sig in zip(texts, self._near.signatures(texts), strict=True)}

    def check(self, row: Row, text: str) -> str | None:
        signature = self._batch.pop(id(text), None)
        if signature is None:
            signature = self._near.signatures([text])[0]
        found = self._near.check_signature(self._keys.key(row), signature, index_duplicates=False)
        if not found:
            return None
        return f"a near-duplicate (Jaccard >= {self._near.threshold}) of {self._keys.where(min(found))}"  # type: ignore[arg-type]


def apply_filters(rows: list[Row], filters: list[RowFilter], counts: dict[str, Counter[str]]) -> tuple[
        list[Row], list[Reject]]:
    """Run `filters` in order over a batch; a row stops at the first filter that drops it. `counts` gets
    kept/dropped per filter name, added up over batches."""
    kept: list[Row] = []
    rejects: list[Reject] = []
    texts = [record_text(row.record) for row in rows]
    for f in filters:
        f.begin_batch(texts)
    tallies = [counts.setdefault(f.name, Counter()) for f in filters]
    for row, text in zip(rows, texts, strict=True):
        for f, tally in zip(filters, tallies, strict=True):
            reason = f.check(row, text)
            if reason is None:
                tally["kept"] += 1
                continue
            tally["dropped"] += 1
            rejects.append(Reject(row.file, row.row, "filter", f.name, reason, None, preview(row.record)))
            break
        else:
            kept.append(row)
    return kept, rejects
