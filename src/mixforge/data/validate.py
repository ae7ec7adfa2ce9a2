"""Check canonical records and count every problem per rule, with the first examples and their rows.

Rules (the codes counted in reports):
  schema          a record field is missing or of the wrong type
  role            a role other than system / user / assistant
  system_position a system turn after the first turn
  first_turn      the first non-system turn is not the user's
  alternation     two user or two assistant turns in a row
  last_turn       the conversation does not end with the assistant (SFT)
  empty           empty content
  control         a NUL or other control character in the text
  reserved        a reserved string (special token, role marker, "System:" ...) is still in the text
  identical       preference: chosen and rejected are the same
  label           the label is missing or outside the declared label set
  too_long        more tokens than the maximum sequence length (model tokenizer + chat template)
Dataset rules: the row count is below the method's minimum or above its maximum.

Token lengths: a byte-level BPE never yields more tokens than bytes, so a record whose content bytes plus its
template's own bytes fit in `max_seq_len` cannot be too long; only the others are rendered and tokenized.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mixforge.data.messages import ROLES
from mixforge.data.rows import Reject, Row, preview
from mixforge.data.sanitize import Sanitizer, field_path, text_fields
from mixforge.errors import DataError
from mixforge.methods import RecordKind

TooLong = Literal["warn", "reject"]
# Row limits per record kind: fewer rows than this rarely teach a model anything, so it is worth a warning.
DEFAULT_MIN_ROWS: dict[str, int] = {"messages": 8, "text": 1, "preference": 8}
DEFAULT_MAX_ROWS: dict[str, int | None] = {"messages": None, "text": None, "preference": None}
EXAMPLES_PER_RULE = 5
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


@dataclass
class ValidationReport:
    """Counts per rule, the first examples of each, and the token-length figures."""

    kind: str
    rows_checked: int = 0
    rows_failed: int = 0
    problems: Counter[str] = field(default_factory=Counter)  # rule -> rows
    warnings: Counter[str] = field(default_factory=Counter)  # rule -> rows (kept, e.g. too_long when warned)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dataset_problems: list[str] = field(default_factory=list)
    max_seq_len: int | None = None
    token_check: str = "skipped (no model given)"
    reserved_check: str = "not checked"
    rows_tokenized: int = 0  # rows whose byte bound exceeded max_seq_len and had to be tokenized
    too_long: int = 0
    truncated_tokens: int = 0  # tokens beyond max_seq_len, summed over the too-long rows
    longest_tokens: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.dataset_problems

    def note(self, reject: Reject, *, warning: bool = False) -> None:
        (self.warnings if warning else self.problems)[reject.rule] += 1
        examples = self.examples.setdefault(reject.rule, [])
        if len(examples) < EXAMPLES_PER_RULE:
            examples.append({"file": reject.file, "row": reject.row, "field": reject.field, "reason": reject.reason})

    def summary(self) -> str:
        lines = [f"checked {self.rows_checked:,} rows: {self.rows_checked - self.rows_failed:,} ok, "
                 f"{self.rows_failed:,} with problems"]
        for rule, n in sorted({**self.problems, **self.warnings}.items(), key=lambda kv: -kv[1]):
            kind = "warning" if rule in self.warnings and rule not in self.problems else "problem"
            lines.append(f"  {rule}: {n:,} rows ({kind})")
            for ex in self.examples.get(rule, [])[:3]:
                where = f"{ex['file']}, row {ex['row']}" + (f", field {ex['field']!r}" if ex["field"] else "")
                lines.append(f"    {where}: {ex['reason']}")
        if self.max_seq_len:
            lines.append(f"  tokens: {self.token_check}; {self.too_long:,} rows over {self.max_seq_len:,} "
                         f"({self.truncated_tokens:,} tokens would be truncated), longest {self.longest_tokens:,}")
        lines.extend(f"  dataset: {p}" for p in self.dataset_problems)
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise DataError("validation failed\n" + self.summary(),
                            hint="fix the rows listed (the rejects file has them all), or run without --strict")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "rows_checked": self.rows_checked, "rows_failed": self.rows_failed,
            "problems": dict(self.problems), "warnings": dict(self.warnings), "examples": self.examples,
            "dataset_problems": self.dataset_problems, "max_seq_len": self.max_seq_len,
            "token_check": self.token_check, "reserved_check": self.reserved_check, "rows_tokenized": self.rows_tokenized, "too_long": self.too_long,
            "truncated_tokens": self.truncated_tokens, "longest_tokens": self.longest_tokens,
        }


# ---- one record ----------------------------------------------------------------------------------------------
def check_record(record: Any, *, kind: RecordKind, labels: frozenset[str] | None = None) -> list[tuple[str, str, str]]:
    """Structural problems of one canonical record as (rule, field, reason); empty when it is fine."""
    if not isinstance(record, dict):
        return [("schema", "", f"a record must be an object, found {type(record).__name__}")]
    out: list[tuple[str, str, str]] = []
    if not isinstance(record.get("id"), str) or not record["id"] or not _encodable(record["id"]):
        out.append(("schema", "id", "'id' must be non-empty, valid text"))
    if kind == "messages":
        out.extend(_check_turns(record.get("messages"), "messages", final="assistant"))
    elif kind == "text":
        text = record.get("text")
        if not isinstance(text, str):
            out.append(("schema", "text", "'text' must be text"))
        elif not text.strip():
            out.append(("empty", "text", "the text is empty"))
    else:
        out.extend(_check_turns(record.get("prompt"), "prompt", final="user"))
        for name in ("chosen", "rejected"):
            value = record.get(name)
            if not isinstance(value, str):
                out.append(("schema", name, f"{name!r} must be text"))
            elif not value.strip():
                out.append(("empty", name, f"{name!r} is empty"))
        if isinstance(record.get("chosen"), str) and record.get("chosen") == record.get("rejected"):
            out.append(("identical", "chosen", "chosen and rejected are the same text"))
    label = record.get("label")
    if label is not None and (not isinstance(label, str) or not _encodable(label)):
        out.append(("schema", "label", "'label' must be valid text"))
    elif labels is not None and label not in labels:
        shown = ", ".join(sorted(labels)[:10]) + (" …" if len(labels) > 10 else "")
        reason = "no label" if label is None else f"label {label!r} is not one of the declared labels ({shown})"
        out.append(("label", "label", reason))
    return out


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))  # isascii() is O(1)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_turns(turns: Any, name: str, *, final: str) -> list[tuple[str, str, str]]:
    if not isinstance(turns, list) or not turns:
        return [("schema", name, f"{name!r} must be a non-empty list of {{role, content}}")]
    out: list[tuple[str, str, str]] = []
    previous = None
    for i, m in enumerate(turns):
        where = f"{name}.{i}"
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            out.append(("schema", where, "a turn must be {\"role\": text, \"content\": text}"))
            return out
        role = m["role"]
        if role not in ROLES:
            out.append(("role", f"{where}.role", f"unknown role {role!r}; roles are {', '.join(ROLES)}"))
            return out
        if not m["content"].strip():
            out.append(("empty", f"{where}.content", f"the {role} turn is empty"))
        if role == "system":
            if i:
                out.append(("system_position", f"{where}.role", "a system turn may only come first"))
            continue
        if previous is None and role != "user":
            out.append(("first_turn", f"{where}.role", f"the first turn after the system prompt is {role!r}, "
                        "not 'user'"))
        elif previous == role:
            out.append(("alternation", f"{where}.role", f"two {role!r} turns in a row"))
        previous = role
    if previous is None:
        out.append(("first_turn", name, "the conversation has only a system prompt"))
    elif previous != final:
        out.append(("last_turn", f"{name}.{len(turns) - 1}.role",
                    f"the last turn is {previous!r}; it must be {final!r}"))
    return out


# ---- token lengths -------------------------------------------------------------------------------------------
class FileTokenizer:
    """What the data checks use of a Hugging Face fast tokenizer (token counts, the chat template, the special
    tokens), read from a model folder's own files with `tokenizers` and transformers' own Jinja renderer, so that
    `data prepare` never imports torch (AutoTokenizer does: 5-9 s of a 33k-row run, more than all its stages).
    `load` returns None where the folder has no tokenizer.json: then AutoTokenizer it is."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        config = json.loads((folder / "tokenizer_config.json").read_text()) if (folder / "tokenizer_config.json"
                                                                               ).is_file() else {}
        self.backend_tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        template = config.get("chat_template")
        if template is None and (folder / "chat_template.jinja").is_file():
            template = (folder / "chat_template.jinja").read_text()
        self.chat_template: str | None = template
        self.model_max_length = config.get("model_max_length")
        self.special_tokens_map = {k: _content(config[k]) for k in _SPECIAL_KEYS if config.get(k) is not None}
        for key in _SPECIAL_KEYS:
            setattr(self, key, self.special_tokens_map.get(key))
        added = {int(i): _Added(_content(t), bool(t.get("special"))) for i, t in
                 config.get("added_tokens_decoder", {}).items()}
        for t in json.loads(self.backend_tokenizer.to_str()).get("added_tokens", []):
            added.setdefault(int(t["id"]), _Added(t["content"], bool(t.get("special"))))
        self.added_tokens_decoder = added
        extra = [_content(t) for t in config.get("additional_special_tokens") or []]
        self.all_special_tokens = sorted(set(self.special_tokens_map.values()) | set(extra))

    @classmethod
    def load(cls, path: str) -> FileTokenizer | None:
        folder = Path(path)
        return cls(folder) if (folder / "tokenizer.json").is_file() else None

    def apply_chat_template(self, conversation, *, tokenize: bool = False, add_generation_prompt: bool = False,
                            **kwargs):
        """Text only, rendered exactly as `PreTrainedTokenizerBase.apply_chat_template(tokenize=False)` does."""
        from transformers.utils.chat_template_utils import render_jinja_template

        if tokenize:
            raise ValueError("FileTokenizer renders text only; count tokens with backend_tokenizer")
        if not self.chat_template:
            raise ValueError("this tokenizer has no chat template")
        batched = bool(conversation) and isinstance(conversation[0], (list, tuple))
        rendered, _ = render_jinja_template(
            conversations=list(conversation) if batched else [conversation], chat_template=self.chat_template,
            add_generation_prompt=add_generation_prompt, **{**self.special_tokens_map, **kwargs})
        return rendered if batched else rendered[0]


def read_model_files(model: str):
    """(ModelInfo, FileTokenizer) from a local model folder's config and tokenizer files, without transformers'
    model or tokenizer classes; None where the folder lacks what that needs (then use `model_info`)."""
    from mixforge.models.registry import ModelInfo, resolve, role_markers, special_tokens

    path = resolve(model)
    tokenizer = FileTokenizer.load(path) if Path(path).is_dir() else None
    config_file = Path(path) / "config.json"
    if tokenizer is None or not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    positions = config.get("max_position_embeddings")
    if not positions:  # nested configs (vision-language models): let transformers read them
        return None
    tok_max = tokenizer.model_max_length or positions
    info = ModelInfo(name=str(model), path=path, model_type=config.get("model_type", ""),
                     chat_template=tokenizer.chat_template, special_tokens=special_tokens(tokenizer),
                     role_markers=role_markers(tokenizer), lora_target_modules=[],
                     max_seq_len=int(min(positions, tok_max)) if tok_max < 10**9 else int(positions),
                     eos_token=tokenizer.eos_token, pad_token=tokenizer.pad_token)
    return info, tokenizer


_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


@dataclass(frozen=True)
class _Added:
    content: str
    special: bool


def _content(token: Any) -> str:
    return token["content"] if isinstance(token, dict) else str(token)


class TokenLengths:
    """Token counts with the model's tokenizer and chat template, tokenizing only what could be too long."""

    def __init__(self, tokenizer: Any, *, kind: RecordKind, max_seq_len: int) -> None:
        self.tokenizer, self.kind, self.max_seq_len = tokenizer, kind, max_seq_len
        backend = getattr(tokenizer, "backend_tokenizer", None)
        described = f"{getattr(backend, 'pre_tokenizer', '')} {getattr(backend, 'decoder', '')}"
        # Byte-level BPE: every token covers at least one byte, so tokens <= bytes. Otherwise count them all.
        self.byte_level = "ByteLevel" in described
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        self._overhead: dict[tuple[str, ...], int] = {}

    def _template_bytes(self, roles: tuple[str, ...]) -> int:
        """Bytes the chat template adds around contents for this sequence of roles (rendered once, cached)."""
        if roles not in self._overhead:
            if not self.has_template:
                self._overhead[roles] = 16 + 8 * len(roles)
            else:
                convo = [{"role": r, "content": "x"} for r in roles]
                try:
                    text = self.tokenizer.apply_chat_template(convo, tokenize=False)
                    self._overhead[roles] = len(text.encode("utf-8")) - len(roles) + 8
                except Exception:  # noqa: BLE001 - the template refuses this role order: tokenize to find out
                    self._overhead[roles] = 1 << 40
        return self._overhead[roles]

    def _lengths(self, texts: list[str], *, add_special_tokens: bool) -> list[int]:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None and hasattr(backend, "encode_batch_fast"):  # no offsets: about 2x faster
            return [len(e.ids) for e in backend.encode_batch_fast(texts, add_special_tokens=add_special_tokens)]
        return [len(x) for x in self.tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]]

    def conversations(self, record: dict[str, Any]) -> list[list[dict[str, str]]]:
        if self.kind == "messages":
            return [record["messages"]]
        if self.kind == "preference":
            return [record["prompt"] + [{"role": "assistant", "content": record[k]}] for k in ("chosen", "rejected")]
        return []

    def bound(self, record: dict[str, Any]) -> int:
        """An upper bound on the record's token count (exact counting is needed only above max_seq_len)."""
        if not self.byte_level:
            return 1 << 40
        if self.kind == "text":
            return _utf8_len(record["text"]) + 8
        return max(sum(_utf8_len(m["content"]) for m in c) + self._template_bytes(
            tuple(m["role"] for m in c)) for c in self.conversations(record))

    def count(self, records: list[dict[str, Any]]) -> list[int]:
        """Exact token counts (the longest variant for preference records)."""
        if not records:
            return []
        if self.kind == "text":
            return self._lengths([r["text"] for r in records], add_special_tokens=True)
        convos = [c for r in records for c in self.conversations(r)]
        if self.has_template:
            texts = self.tokenizer.apply_chat_template(convos, tokenize=False)
        else:
            texts = ["\n".join(m["content"] for m in c) for c in convos]
        lengths = self._lengths(texts, add_special_tokens=not self.has_template)
        per = len(lengths) // len(records)
        return [max(lengths[i * per:(i + 1) * per]) for i in range(len(records))]


# ---- a batch -------------------------------------------------------------------------------------------------
class Validator:
    """Validates batches of canonical records and accumulates one `ValidationReport`."""

    def __init__(
        self,
        *,
        kind: RecordKind,
        reserved: Sanitizer | None = None,
        lengths: TokenLengths | None = None,
        labels: Iterable[str] | None = None,
        too_long: TooLong = "warn",
    ) -> None:
        if too_long not in ("warn", "reject"):
            raise DataError(f"too_long must be 'warn' or 'reject', got {too_long!r}")
        self.kind, self.reserved, self.lengths, self.too_long = kind, reserved, lengths, too_long
        self.labels = frozenset(str(x) for x in labels) if labels is not None else None
        self.report = ValidationReport(kind=kind)
        self.report.reserved_check = ("searched in every text" if reserved is not None
                                      else "done by sanitize (each rewritten text is re-checked)")
        if lengths is not None:
            self.report.max_seq_len = lengths.max_seq_len
            how = "byte bound, then tokenizer" if lengths.byte_level else "every row tokenized"
            self.report.token_check = f"chat template + tokenizer ({how})"

    def __call__(self, rows: list[Row]) -> tuple[list[Row], list[Reject]]:
        bad: dict[int, list[Reject]] = {}

        def add(i: int, rule: str, field_: str, reason: str) -> None:
            row = rows[i]
            bad.setdefault(i, []).append(Reject(row.file, row.row, "validate", rule, reason, field_ or None,
                                                preview(row.record)))

        for i, row in enumerate(rows):
            for rule, field_, reason in check_record(row.record, kind=self.kind, labels=self.labels):
                add(i, rule, field_, reason)
        self._check_text(rows, bad, add)
        warned = self._check_lengths(rows, bad, add)
        self.report.rows_checked += len(rows)
        kept: list[Row] = []
        rejects: list[Reject] = []
        for i, row in enumerate(rows):
            found = bad.get(i, [])
            for r in found:
                self.report.note(r, warning=r.rule == "too_long" and i in warned)
            if found and i not in warned:
                self.report.rows_failed += 1
                rejects.append(found[0] if len(found) == 1 else _merge(found))
            else:
                kept.append(row)
        return kept, rejects

    def _check_text(self, rows: list[Row], bad: dict[int, list[Reject]], add) -> None:
        slots = [(i, c, k) for i, row in enumerate(rows) if i not in bad for c, k in text_fields(row.record)]
        if not slots:
            return
        texts = [c[k] for _, c, k in slots]

        def where(j: int) -> tuple[int, str, str]:
            i, c, k = slots[j]
            return i, field_path(rows[i].record, c, k), c[k]

        try:
            joined = "\n".join(texts).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON): not text any file can hold
            for i, path, text in map(where, range(len(slots))):
                if not _encodable(text):
                    add(i, "control", path, "a lone UTF-16 surrogate (e.g. \\ud800): not valid Unicode")
            joined = "\n".join(texts).encode("utf-8", "surrogatepass")
        if len(joined.translate(None, _CONTROL_BYTES)) != len(joined):  # control bytes never occur inside a
            # multi-byte UTF-8 character, so deleting them is an exact (and fast) test for the whole batch
            for i, path, text in map(where, range(len(slots))):
                if m := _CONTROL.search(text):
                    name = "a NUL" if m.group(0) == "\x00" else f"control character U+{ord(m.group(0)):04X}"
                    add(i, "control", path, f"{name} at character {m.start() + 1}")
        if self.reserved is not None:
            for j in sorted(self.reserved.candidates(texts)):
                i, path, text = where(j)
                hits: Counter[str] = Counter()
                self.reserved.text(text, hits)
                if hits:
                    found = ", ".join(repr(h) for h in hits)
                    add(i, "reserved", path, f"still contains {found} (sanitize escapes or strips these)")

    def _check_lengths(self, rows: list[Row], bad: dict[int, list[Reject]], add) -> set[int]:
        if self.lengths is None:
            return set()
        limit = self.lengths.max_seq_len
        todo = [i for i, row in enumerate(rows) if i not in bad and self.lengths.bound(row.record) > limit]
        warned: set[int] = set()
        if not todo:
            return warned
        counts = self.lengths.count([rows[i].record for i in todo])
        self.report.rows_tokenized += len(todo)
        for i, n in zip(todo, counts, strict=True):
            self.report.longest_tokens = max(self.report.longest_tokens, n)
            if n > limit:
                self.report.too_long += 1
                self.report.truncated_tokens += n - limit
                add(i, "too_long", "", f"{n:,} tokens with the chat template; the limit is {limit:,}")
                if self.too_long == "warn" and len(bad[i]) == 1:
                    warned.add(i)
        return warned

    def finish(self, *, rows_kept: int, min_rows: int | None = None, max_rows: int | None = None) -> ValidationReport:
        """Dataset-level rules on the final row count; returns the report."""
        low = DEFAULT_MIN_ROWS[self.kind] if min_rows is None else min_rows
        high = DEFAULT_MAX_ROWS[self.kind] if max_rows is None else max_rows
        if rows_kept < low:
            self.report.dataset_problems.append(f"{rows_kept:,} rows kept; {self.kind} training needs at least "
                                                f"{low:,} (min_rows)")
        if high is not None and rows_kept > high:
            self.report.dataset_problems.append(f"{rows_kept:,} rows kept; the maximum is {high:,} (max_rows)")
        return self.report


def _merge(found: list[Reject]) -> Reject:
    first = found[0]
    reason = "; ".join(f"{r.field + ': ' if r.field else ''}{r.reason}" for r in found[:5])
    return Reject(first.file, first.row, first.stage, first.rule, reason, first.field, first.raw)
