"""Keep user text from colliding with the target model's chat template.

Two kinds of pattern:
- *markers*: plain-text turn labels such as "System:" or "Assistant:", matched in any case at the start of a
  word (the seed's list: System, User, Assistant, Bot, Thought);
- *literals*: exact strings: the model's special tokens and template role markers, each a whole string
  (`model_info(model).reserved_strings`: '<|im_start|>system', never the bare word 'system') plus the seed's
  "[EOS]". A pattern made only of word characters and spaces is refused: it would delete ordinary text.

Each pattern has an action: `escape` (the seed's trick: "System:" -> "System :", a literal gets a space after
its first character), `strip` (remove it), or `reject` (set the row aside). Stripping repeats until nothing is
left to strip, so "<|us<|end|>er|>" cannot reassemble into "<|user|>". Every hit is counted per pattern.

Matching runs once per batch over the joined text (the marker search runs on the reversed text so the regex
starts at the literal ':'), and only the few texts with a hit are rewritten: about 4% of MedReason-like rows.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mixforge.data.rows import Reject, Row, preview
from mixforge.errors import ConfigError
from mixforge.models.registry import is_plain_words

Action = Literal["escape", "strip", "reject"]
ACTIONS: tuple[str, ...] = ("escape", "strip", "reject")
SEED_MARKERS: tuple[str, ...] = ("System:", "User:", "Assistant:", "Bot:", "Thought:")
SEED_LITERALS: tuple[str, ...] = ("[EOS]",)
_MAX_STRIP_PASSES = 8


@dataclass(frozen=True)
class Sanitizer:
    """Compiled patterns and their actions. Build it with `build_sanitizer`; apply with `sanitize`."""

    markers: dict[str, Action]  # "System:" -> action (matched case-insensitively at a word start)
    literals: dict[str, Action]  # "<|user|>" -> action (matched exactly)
    strip_whitespace: bool = True
    _rx: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, action in {**self.markers, **self.literals}.items():
            if action not in ACTIONS:
                raise ConfigError(f"sanitize: action {action!r} for {name!r} is not one of {', '.join(ACTIONS)}")
        for m in self.markers:
            if not re.fullmatch(r"\w+:", m):
                raise ConfigError(f"sanitize: marker {m!r} must be a word followed by ':' (e.g. 'System:')")
        for lit in self.literals:
            if is_plain_words(lit):
                raise ConfigError(f"sanitize: pattern {lit!r} is plain words, which would delete ordinary text; "
                                  "a pattern is a marker with its colon ('System:') or a literal such as '<|im_end|>'")
        words = sorted({m[:-1].lower() for m in self.markers}, key=lambda w: (-len(w), w))
        self._rx["marker_key"] = {m[:-1].lower(): m for m in self.markers}
        if words:
            self._rx["marker"] = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r"):", re.IGNORECASE)
            reversed_words = "|".join(re.escape(w[::-1]) for w in words)
            self._rx["marker_rev"] = re.compile(r":(?:" + reversed_words + r")\b", re.IGNORECASE)
        for action in ACTIONS:
            lits = sorted((s for s, a in self.literals.items() if a == action), key=lambda s: (-len(s), s))
            if lits:
                self._rx[f"literal_{action}"] = re.compile("|".join(map(re.escape, lits)))
        lits = sorted(self.literals, key=lambda s: (-len(s), s))
        if lits:
            self._rx["literal_any"] = re.compile("|".join(map(re.escape, lits)))
        prefixes: dict[str, list[str]] = {}
        for lit in self.literals:
            prefixes.setdefault(lit[:2], []).append(lit)
        self._rx["prefixes"] = prefixes
        rejecting = [m[:-1].lower() for m, a in self.markers.items() if a == "reject"]
        if rejecting:
            self._rx["marker_reject"] = re.compile(r"\b(" + "|".join(map(re.escape, rejecting)) + r"):",
                                                   re.IGNORECASE)

    @property
    def patterns(self) -> dict[str, Action]:
        return {**self.markers, **self.literals}

    # ---- one text ----------------------------------------------------------------------------------------
    def text(self, text: str, hits: Counter[str]) -> tuple[str, str | None]:
        """Sanitize one text; add hits per pattern to `hits`. Returns (new text, the rejecting pattern or None)."""
        rx = self._rx
        if "literal_reject" in rx and (m := rx["literal_reject"].search(text)):
            hits[m.group(0)] += 1
            return text, m.group(0)
        if "marker_reject" in rx and (m := rx["marker_reject"].search(text)):
            key = rx["marker_key"][m.group(1).lower()]
            hits[key] += 1
            return text, key
        if "literal_strip" in rx:
            for _ in range(_MAX_STRIP_PASSES):
                text, n = rx["literal_strip"].subn(lambda m: _count(hits, m.group(0), ""), text)
                if not n:
                    break
        if "literal_escape" in rx:
            text = rx["literal_escape"].sub(lambda m: _count(hits, m.group(0), _escape_literal(m.group(0))), text)
        if "marker" in rx:
            text = rx["marker"].sub(self._marker_sub(hits), text)
        if "literal_any" in rx and (m := rx["literal_any"].search(text)):
            return text, m.group(0)  # still there after every pass (deeply nested): the row cannot be cleaned
        return text, None

    def _marker_sub(self, hits: Counter[str]):
        keys = self._rx["marker_key"]

        def sub(m: re.Match[str]) -> str:
            key = keys[m.group(1).lower()]
            hits[key] += 1
            return "" if self.markers[key] == "strip" else f"{m.group(1)} :"

        return sub

    # ---- a batch of texts ----------------------------------------------------------------------------------
    def candidates(self, texts: list[str]) -> set[int]:
        """Indices of the texts that may hold a pattern (a superset: `text` confirms), found by searching the
        joined batch once per literal prefix (str.find runs at GB/s, a regex alternation at about 200 MB/s)
        and once for the markers."""
        if not texts:
            return set()
        joined = "\x00".join(texts)
        starts = [0]
        for t in texts[:-1]:
            starts.append(starts[-1] + len(t) + 1)
        positions: list[int] = []
        for prefix, lits in self._rx["prefixes"].items():  # one scan per distinct 2-character prefix
            for at in _find_all(joined, prefix):
                if any(joined.startswith(lit, at) for lit in lits):
                    positions.append(at)
        if self.markers:  # reversed, the regex starts with the literal ':' and skips ahead to each colon
            end = len(joined)
            positions.extend(end - m.end() for m in self._rx["marker_rev"].finditer(joined[::-1]))
        return {bisect.bisect_right(starts, p) - 1 for p in positions}


def _find_all(haystack: str, needle: str) -> list[int]:
    out = []
    i = haystack.find(needle)
    while i != -1:
        out.append(i)
        i = haystack.find(needle, i + 1)
    return out


def _count(hits: Counter[str], key: str, replacement: str) -> str:
    hits[key] += 1
    return replacement


def _escape_literal(s: str) -> str:
    return s[:-1] + " :" if s.endswith(":") else s[:1] + " " + s[1:]


def build_sanitizer(
    *,
    reserved: Iterable[str] = (),
    markers: Iterable[str] = SEED_MARKERS,
    literals: Iterable[str] = SEED_LITERALS,
    reserved_action: Action = "strip",
    marker_action: Action = "escape",
    literal_action: Action = "strip",
    actions: Mapping[str, Action] | None = None,
    strip_whitespace: bool = True,
) -> Sanitizer:
    """Patterns from the model (`reserved`: its special tokens and role markers) and the seed's plain-text
    markers and literals, each with its action; `actions` overrides single patterns ({"[EOS]": "reject"})."""
    marker_map: dict[str, Action] = {m: marker_action for m in markers}
    literal_map: dict[str, Action] = {s: literal_action for s in literals}
    for s in reserved:
        if not is_plain_words(s):  # a bare word ('system', 'model') is the user's text, never a template marker
            literal_map[s.strip()] = reserved_action
    by_lower = {m.lower(): m for m in marker_map}
    for pattern, action in (actions or {}).items():
        if pattern.lower() in by_lower:
            marker_map[by_lower[pattern.lower()]] = action
        elif re.fullmatch(r"\w+:", pattern):
            marker_map[pattern] = action
        else:
            literal_map[pattern] = action
    return Sanitizer(markers=marker_map, literals=literal_map, strip_whitespace=strip_whitespace)


def sanitize_text(text: str, sanitizer: Sanitizer) -> str:
    """One text through the sanitizer (a rejecting pattern leaves the text as it is)."""
    out, _ = sanitizer.text(text, Counter())
    return out.strip() if sanitizer.strip_whitespace else out


def text_fields(record: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(container, key) of every user-written text in a canonical record: turn contents, text, answers."""
    turns = record.get("messages")
    if turns is None:
        turns = record.get("prompt")
    slots = ([(m, "content") for m in turns if type(m) is dict and type(m.get("content")) is str]
             if type(turns) is list else [])
    for key in ("text", "chosen", "rejected"):
        if key in record and type(record[key]) is str:
            slots.append((record, key))
    return slots


def field_path(record: dict[str, Any], container: dict[str, Any], key: str) -> str:
    """The dotted path of a text slot ('messages.1.content'), for messages about it."""
    if container is record:
        return key
    for name in ("messages", "prompt"):
        turns = record.get(name)
        if isinstance(turns, list):
            for i, m in enumerate(turns):
                if m is container:
                    return f"{name}.{i}.{key}"
    return key


def sanitize(rows: list[Row], sanitizer: Sanitizer) -> tuple[list[Row], list[Reject], Counter[str]]:
    """Sanitize every text of a batch of canonical records in place; rows hitting a `reject` pattern are
    returned as rejects. Returns (rows, rejects, hits per pattern)."""
    hits: Counter[str] = Counter()
    slots = [(i, slot) for i, row in enumerate(rows) for slot in text_fields(row.record)]
    texts = [c[k] for _, (c, k) in slots]
    rejected: dict[int, Reject] = {}
    for j in sorted(sanitizer.candidates(texts)):
        i, (container, key) = slots[j]
        if i in rejected:
            continue
        new, bad = sanitizer.text(container[key], hits)
        if bad is not None:
            row = rows[i]
            how = "action: reject" if sanitizer.patterns.get(bad) == "reject" else "it could not be removed"
            rejected[i] = Reject(row.file, row.row, "sanitize", "reserved",
                                 f"contains {bad!r}, which collides with the chat template ({how})",
                                 field_path(row.record, container, key), preview(row.record))
        else:
            container[key] = new
    if sanitizer.strip_whitespace:
        for _, (container, key) in slots:
            value = container[key]
            if value[:1].isspace() or value[-1:].isspace():
                container[key] = value.strip()
    kept = [row for i, row in enumerate(rows) if i not in rejected]
    return kept, list(rejected.values()), hits
