"""Which columns of the input hold what: a typed, validated column mapping and the field lookup it drives.

    ColumnMapping(question="q", answer="a")                 # question/answer (+ optional system)
    ColumnMapping(instruction="instruction", input="input", output="output")      # Alpaca
    ColumnMapping(messages="messages")                       # OpenAI-style [{"role", "content"}]
    ColumnMapping(conversations="conversations")             # ShareGPT [{"from", "value"}]
    ColumnMapping(prompt="prompt", chosen="chosen", rejected="rejected")          # preference
    ColumnMapping(text="text")                               # continued pre-training
    ColumnMapping(messages="messages", label="label")        # any shape + a classification label

Every value is a dotted path into the row ("meta.question", "turns.0.text").
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mixforge.errors import ConfigError
from mixforge.suggest import closest

Shape = Literal["qa", "alpaca", "messages", "sharegpt", "preference", "text", "bedrock"]

# The fields each shape needs (required, optional); `label` and `id` go with any shape.
SHAPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "qa": (("question", "answer"), ("system",)),
    "alpaca": (("instruction", "output"), ("input", "system")),
    "messages": (("messages",), ()),
    "sharegpt": (("conversations",), ()),
    "preference": (("prompt", "chosen", "rejected"), ("system",)),
    "text": (("text",), ()),
    "bedrock": (("bedrock",), ()),
}
_SHAPE_FIELDS = {f for req, opt in SHAPES.values() for f in req + opt}


class ColumnMapping(BaseModel):
    """Input column (dotted path) for each canonical field; leave out the ones the data does not have."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str | None = Field(None, description="The user's question (question/answer data).")
    answer: str | None = Field(None, description="The assistant's answer (question/answer data).")
    system: str | None = Field(None, description="An optional system prompt per row.")
    instruction: str | None = Field(None, description="Alpaca: the instruction.")
    input: str | None = Field(None, description="Alpaca: the optional input appended to the instruction.")
    output: str | None = Field(None, description="Alpaca: the answer.")
    messages: str | None = Field(None, description="A list of {role, content} turns (OpenAI style).")
    conversations: str | None = Field(None, description="A list of {from, value} turns (ShareGPT style).")
    prompt: str | None = Field(None, description="Preference: the prompt (text or a list of messages).")
    chosen: str | None = Field(None, description="Preference: the preferred answer.")
    rejected: str | None = Field(None, description="Preference: the dispreferred answer.")
    text: str | None = Field(None, description="Plain text for continued pre-training.")
    bedrock: str | None = Field(None, description="Rows in the Bedrock conversation format ('.' = the row).")
    label: str | None = Field(None, description="A classification label, kept on every record.")
    id: str | None = Field(None, description="A row id; by default '<file stem>-<row>'.")

    @model_validator(mode="after")
    def _one_shape(self) -> ColumnMapping:
        given = {k for k, v in self.model_dump().items() if v is not None and k in _SHAPE_FIELDS}
        if not given:
            raise ValueError("map at least one content column, e.g. question=...,answer=... or messages=...")
        matches = [s for s, (req, opt) in SHAPES.items() if set(req) <= given and given <= set(req) | set(opt)]
        if len(matches) != 1:
            hints = "; ".join(f"{s}: {'+'.join(req)}" + (f" (+{'+'.join(opt)})" if opt else "")
                              for s, (req, opt) in SHAPES.items())
            raise ValueError(f"the mapped columns {sorted(given)} match no single shape; shapes are {hints}")
        return self

    @cached_property
    def shape(self) -> Shape:
        given = {k for k, v in self.model_dump().items() if v is not None and k in _SHAPE_FIELDS}
        for s, (req, opt) in SHAPES.items():
            if set(req) <= given <= set(req) | set(opt):
                return s  # type: ignore[return-value]
        raise AssertionError("unreachable: the validator guarantees one shape")

    def columns(self) -> dict[str, str]:
        """canonical field -> input path, for the fields that are mapped."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


def parse_mapping(spec: ColumnMapping | Mapping[str, str] | str | None) -> ColumnMapping | None:
    """'question=q,answer=a' / {'question': 'q'} / ColumnMapping -> ColumnMapping (None stays None: infer)."""
    if spec is None or isinstance(spec, ColumnMapping):
        return spec
    if isinstance(spec, str):
        pairs: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ConfigError(f"mapping: {part!r} is not FIELD=COLUMN (e.g. question=question,answer=answer)")
            pairs[key.strip()] = value.strip()
        spec = pairs
    unknown = [k for k in spec if k not in ColumnMapping.model_fields]
    if unknown:
        problems = []
        for k in unknown:
            close = closest(k, ColumnMapping.model_fields, cutoff=0.6)
            problems.append(f"mapping: unknown field {k!r}" + (f" (did you mean {close!r}?)" if close else ""))
        raise ConfigError(problems, hint="fields: " + ", ".join(ColumnMapping.model_fields))
    try:
        return ColumnMapping(**dict(spec))
    except ValidationError as exc:
        problems = [f"mapping.{'.'.join(map(str, e['loc'])) or 'columns'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(problems, hint="fields: " + ", ".join(ColumnMapping.model_fields)) from None


# Column names recognised without a mapping, in order of preference (Bedrock rows are detected first).
_ALIASES: list[dict[str, str]] = [
    {"messages": "messages"},
    {"conversations": "conversations"},
    {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
    {"instruction": "instruction", "input": "input", "output": "output"},
    {"question": "question", "answer": "answer"},
    {"question": "prompt", "answer": "completion"},
    {"question": "query", "answer": "response"},
    {"text": "text"},
]


def infer_mapping(columns: list[str]) -> ColumnMapping:
    """Guess the mapping from the columns of the first row (same names as the canonical fields)."""
    cols = set(columns)
    if "schemaVersion" in cols and "messages" in cols:
        return ColumnMapping(bedrock=".")
    for candidate in _ALIASES:
        required = {k: v for k, v in candidate.items() if k != "input"}
        if set(required.values()) <= cols:
            found = {k: v for k, v in candidate.items() if v in cols}
            for extra in ("system", "label", "id"):
                if extra in cols:
                    found[extra] = extra
            try:
                return ColumnMapping(**found)
            except ValidationError:
                continue
    raise ConfigError(
        f"cannot guess which columns to use from {sorted(cols)}",
        hint="pass a mapping, e.g. --map question=COLUMN,answer=COLUMN (or messages=, text=, prompt=...)",
    )


_MISSING = object()


def get_path(record: Any, path: str) -> Any:
    """Follow a dotted path ('a.b.0.c'); '.' is the record itself. Returns `MISSING` when a step is absent."""
    if path == ".":
        return record
    if "." not in path:  # the common case: a top-level column
        return record.get(path, _MISSING) if isinstance(record, dict) else _MISSING
    value = record
    for step in path.split("."):
        if isinstance(value, dict):
            if step not in value:
                return _MISSING
            value = value[step]
        elif isinstance(value, list) and step.lstrip("-").isdigit():
            index = int(step)
            if not -len(value) <= index < len(value):
                return _MISSING
            value = value[index]
        else:
            return _MISSING
    return value


MISSING = _MISSING


def missing_column_message(record: dict, path: str) -> str:
    """'no column "answr"; columns: question, answer (did you mean "answer"?)' for a path that is absent."""
    head, _, _ = path.partition(".")
    level: Any = record
    shown = path
    if head in record and "." in path:  # the top-level key exists: say which nested step is missing
        parts = path.split(".")
        for i, step in enumerate(parts):
            nxt = get_path(level, step)
            if nxt is MISSING:
                shown = ".".join(parts[: i + 1])
                break
            level = nxt
        keys = list(level) if isinstance(level, dict) else []
        wanted = shown.rsplit(".", 1)[-1]
    else:
        keys, wanted = list(record), head
    close = closest(wanted, keys, cutoff=0.6)
    listing = ", ".join(map(str, keys[:30])) + (" …" if len(keys) > 30 else "")
    hint = f" (did you mean {close!r}?)" if close else ""
    return f"no column {shown!r}; the row has: {listing or '(nothing)'}{hint}"
