"""Turn mapped input rows into the canonical records every later stage speaks, and convert to and from the
Bedrock conversation format.

    SFT            {"id", "messages": [{"role": "system"|"user"|"assistant", "content"}, ...]}
    pre-training   {"id", "text"}
    preference     {"id", "prompt": [messages], "chosen": str, "rejected": str}
    (+ "label": str on any of them when the mapping has a label column)

`to_record` is pure: one row in, one record out, or a `RowProblem` saying which field is wrong and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from mixforge.data.mapping import MISSING, ColumnMapping, get_path, missing_column_message
from mixforge.data.rows import Reject, Row, preview
from mixforge.errors import ConfigError, DataError
from mixforge.methods import RecordKind

BEDROCK_SCHEMA = "bedrock-conversation-2024"
ROLES = ("system", "user", "assistant")
# Spellings of the three roles found in public datasets (ShareGPT 'human'/'gpt', Gemini 'model', ...).
ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "ai": "assistant",
}

# Which input shapes each record kind can be built from.
KIND_SHAPES: dict[str, tuple[str, ...]] = {
    "messages": ("qa", "alpaca", "messages", "sharegpt", "bedrock"),
    "text": ("text", "qa", "alpaca", "messages", "sharegpt", "bedrock"),
    "preference": ("preference",),
}


class RowProblem(Exception):
    """Why one row cannot become a record: a rule code, a sentence, and the field."""

    def __init__(self, rule: str, reason: str, field: str | None = None) -> None:
        self.rule, self.reason, self.field = rule, reason, field
        super().__init__(reason)


def check_shape(mapping: ColumnMapping, kind: RecordKind) -> None:
    """A ConfigError when `kind` records cannot be built from this mapping's shape (e.g. SFT from text=...)."""
    if mapping.shape not in KIND_SHAPES[kind]:
        need = {"messages": "question/answer, instruction/output, messages or conversations",
                "text": "text (or any conversation shape, joined)",
                "preference": "prompt, chosen and rejected"}[kind]
        raise ConfigError(f"mapping: a {mapping.shape!r} mapping cannot make {kind!r} records; map {need}")


# ---- fields --------------------------------------------------------------------------------------------------
def _value(raw: dict, mapping: ColumnMapping, name: str, *, required: bool = True) -> Any:
    path = getattr(mapping, name)
    value = get_path(raw, path) if path is not None else MISSING
    if value is MISSING or value is None:
        if not required:
            return None
        if value is None:
            raise RowProblem("empty", f"{path!r} is null", path)
        raise RowProblem("missing_field", missing_column_message(raw, path), path)
    return value


def _text(raw: dict, mapping: ColumnMapping, name: str, *, required: bool = True) -> str | None:
    value = _value(raw, mapping, name, required=required)
    if value is None:
        return None
    path = getattr(mapping, name)
    if not isinstance(value, str):
        raise RowProblem("type", f"expected text, found {_type_name(value)}", path)
    if required and not value.strip():
        raise RowProblem("empty", "the text is empty", path)
    return value if value.strip() else None


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _content(value: Any, where: str) -> str:
    """A message's content: text, or a list of parts [{"type": "text", "text": ...}] / [{"text": ...}] joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
        return "".join(p["text"] for p in value)
    raise RowProblem("type", f"content must be text, found {_type_name(value)}", where)


def _turns(value: Any, path: str, role_key: str, content_key: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise RowProblem("type", f"expected a list of turns, found {_type_name(value)}", path)
    if not value:
        raise RowProblem("empty", "the conversation has no turns", path)
    out = []
    for i, turn in enumerate(value):
        where = f"{path}.{i}"
        if not isinstance(turn, dict):
            raise RowProblem("type", f"a turn must be an object, found {_type_name(turn)}", where)
        if role_key not in turn or content_key not in turn:
            raise RowProblem("missing_field", f"a turn needs {role_key!r} and {content_key!r}; it has "
                             f"{', '.join(map(str, turn)) or 'nothing'}", where)
        role = turn[role_key]
        if not isinstance(role, str):
            raise RowProblem("type", f"the role must be text, found {_type_name(role)}", f"{where}.{role_key}")
        out.append({"role": ROLE_ALIASES.get(role.strip().lower(), role),
                    "content": _content(turn[content_key], f"{where}.{content_key}")})
    return out


def _label(raw: dict, mapping: ColumnMapping) -> str | None:
    if mapping.label is None:
        return None
    value = _value(raw, mapping, "label")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RowProblem("type", f"a label must be text or an integer, found {_type_name(value)}", mapping.label)
    label = str(value).strip()
    if not label:
        raise RowProblem("empty", "the label is empty", mapping.label)
    return label


# ---- records -------------------------------------------------------------------------------------------------
def conversation(raw: dict, mapping: ColumnMapping) -> list[dict[str, str]]:
    """The row as chat messages, whatever its shape (qa, alpaca, messages, sharegpt, bedrock)."""
    shape = mapping.shape
    if shape == "qa":
        system = _text(raw, mapping, "system", required=False)
        turns = [{"role": "user", "content": _text(raw, mapping, "question")},
                 {"role": "assistant", "content": _text(raw, mapping, "answer")}]
        return ([{"role": "system", "content": system}] if system else []) + turns  # type: ignore[list-item]
    if shape == "alpaca":
        system = _text(raw, mapping, "system", required=False)
        instruction = _text(raw, mapping, "instruction")
        extra = _text(raw, mapping, "input", required=False)
        user = f"{instruction}\n\n{extra}" if extra else instruction
        turns = [{"role": "user", "content": user}, {"role": "assistant", "content": _text(raw, mapping, "output")}]
        return ([{"role": "system", "content": system}] if system else []) + turns  # type: ignore[list-item]
    if shape == "messages":
        return _turns(_value(raw, mapping, "messages"), mapping.messages or "", "role", "content")
    if shape == "sharegpt":
        return _turns(_value(raw, mapping, "conversations"), mapping.conversations or "", "from", "value")
    if shape == "bedrock":
        return from_bedrock(_value(raw, mapping, "bedrock"))["messages"]
    raise RowProblem("type", f"a {shape!r} row is not a conversation")


def to_record(raw: dict, mapping: ColumnMapping, kind: RecordKind, *, row_id: str) -> dict[str, Any]:
    """One input row -> one canonical record of `kind`. Raises RowProblem naming the field that is wrong."""
    if mapping.id is not None:
        value = _value(raw, mapping, "id")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RowProblem("type", f"an id must be text or an integer, found {_type_name(value)}", mapping.id)
        row_id = str(value)
    record: dict[str, Any] = {"id": row_id}
    if kind == "messages":
        record["messages"] = conversation(raw, mapping)
    elif kind == "text":
        if mapping.shape == "text":
            record["text"] = _text(raw, mapping, "text")
        else:
            record["text"] = "\n\n".join(m["content"] for m in conversation(raw, mapping))
    else:
        system = _text(raw, mapping, "system", required=False)
        prompt = _value(raw, mapping, "prompt")
        if isinstance(prompt, str):
            if not prompt.strip():
                raise RowProblem("empty", "the prompt is empty", mapping.prompt)
            turns = [{"role": "user", "content": prompt}]
        else:
            turns = _turns(prompt, mapping.prompt or "", "role", "content")
        record["prompt"] = ([{"role": "system", "content": system}] if system else []) + turns
        record["chosen"] = _answer(_value(raw, mapping, "chosen"), mapping.chosen or "")
        record["rejected"] = _answer(_value(raw, mapping, "rejected"), mapping.rejected or "")
    label = _label(raw, mapping)
    if label is not None:
        record["label"] = label
    return record


def _answer(value: Any, path: str) -> str:
    """A preference answer: text, one {role, content} message, or a conversation whose last turn is it."""
    if isinstance(value, dict) and "content" in value:
        value = value["content"]
    elif isinstance(value, list) and value and isinstance(value[-1], dict) and "content" in value[-1]:
        value = value[-1]["content"]
    return _content(value, path)


def transform(rows: Iterable[Row], *, mapping: ColumnMapping, kind: RecordKind) -> tuple[list[Row], list[Reject]]:
    """Map a batch of input rows to canonical records; rows that cannot be mapped become rejects."""
    out: list[Row] = []
    rejects: list[Reject] = []
    stems: dict[str, str] = {}
    for row in rows:
        stem = stems.get(row.file)
        if stem is None:
            stem = stems[row.file] = PurePosixPath(row.file.rstrip("/")).name.split(".")[0] or "row"
        try:
            out.append(Row(row.file, row.row, to_record(row.record, mapping, kind, row_id=f"{stem}-{row.row}")))
        except RowProblem as exc:
            rejects.append(Reject(row.file, row.row, "map", exc.rule, exc.reason, exc.field, preview(row.record)))
        except DataError as exc:  # from_bedrock on a malformed row
            rejects.append(Reject(row.file, row.row, "map", "bedrock", exc.reason, exc.field, preview(row.record)))
    return out, rejects


# ---- Bedrock conversation format -----------------------------------------------------------------------------
def to_bedrock(record: dict[str, Any]) -> dict[str, Any]:
    """A canonical SFT record -> {"schemaVersion": "bedrock-conversation-2024", "system": [{"text"}],
    "messages": [{"role", "content": [{"text"}]}]}. The label, if any, is kept beside them."""
    if "messages" not in record:
        raise DataError("only conversation records (with 'messages') convert to the Bedrock format",
                        field="messages")
    system = [{"text": m["content"]} for m in record["messages"] if m["role"] == "system"]
    out: dict[str, Any] = {"schemaVersion": BEDROCK_SCHEMA}
    if system:
        out["system"] = system
    out["messages"] = [{"role": m["role"], "content": [{"text": m["content"]}]}
                       for m in record["messages"] if m["role"] != "system"]
    if "label" in record:
        out["label"] = record["label"]
    return out


def from_bedrock(row: Any) -> dict[str, Any]:
    """A Bedrock conversation row -> {"messages": [...]} (system first). Raises DataError when malformed."""
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        raise DataError("a Bedrock row needs a 'messages' list", field="messages")
    if row.get("schemaVersion") not in (None, BEDROCK_SCHEMA):
        raise DataError(f"unknown schemaVersion {row.get('schemaVersion')!r}; expected {BEDROCK_SCHEMA!r}",
                        field="schemaVersion")
    messages: list[dict[str, str]] = []
    system = row.get("system") or []
    if isinstance(system, str):
        system = [{"text": system}]
    if not isinstance(system, list) or not all(isinstance(s, dict) and isinstance(s.get("text"), str)
                                               for s in system):
        raise DataError("'system' must be a list of {\"text\": ...}", field="system")
    if system:
        messages.append({"role": "system", "content": "\n".join(s["text"] for s in system)})
    for i, message in enumerate(row["messages"]):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise DataError("a message needs a 'role'", field=f"messages.{i}")
        parts = message.get("content")
        if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
            raise DataError("'content' must be a list of {\"text\": ...}", field=f"messages.{i}.content")
        texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
        if len(texts) != len(parts):
            raise DataError("only text content converts (found an image, document or tool part)",
                            field=f"messages.{i}.content")
        messages.append({"role": message["role"], "content": "".join(texts)})
    return {"messages": messages}
