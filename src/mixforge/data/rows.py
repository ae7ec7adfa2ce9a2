"""The two values that flow through the data pipeline: a `Row` (one record and where it came from) and a
`Reject` (a row that was set aside, with the reason). Every stage takes rows and returns rows plus rejects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

RAW_PREVIEW_CHARS = 2_000  # a reject keeps this much of the offending row, enough to find and fix it


@dataclass(slots=True)
class Row:
    """One record and its origin: `file` and `row` (1-based line for JSONL/CSV, 1-based index otherwise)."""

    file: str
    row: int
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reject:
    """A row that did not make it, and why. Written to rejects.jsonl, never lost."""

    file: str
    row: int | None
    stage: str  # load | map | sanitize | validate | filter
    rule: str  # a short code counted in reports: json, utf8, missing_field, type, empty, reserved, ...
    reason: str  # a sentence a person can act on
    field: str | None = None
    raw: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "row": self.row,
            "stage": self.stage,
            "rule": self.rule,
            "field": self.field,
            "reason": self.reason,
            "raw": self.raw,
        }

    def where(self) -> str:
        parts = [self.file]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.field:
            parts.append(f"field {self.field!r}")
        return ", ".join(parts)


def preview(value: Any) -> str:
    """The first RAW_PREVIEW_CHARS characters of a row, as JSON when it is a value, as text when it is text."""
    if isinstance(value, bytes):
        text = value[: RAW_PREVIEW_CHARS * 4].decode("utf-8", errors="backslashreplace")
    elif isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            text = repr(value)
    return text if len(text) <= RAW_PREVIEW_CHARS else text[:RAW_PREVIEW_CHARS] + "…"
