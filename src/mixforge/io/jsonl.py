"""Reading JSON Lines files that mixforge or its user wrote as data for a step (task files, prepared records,
source files, metrics logs). Row numbers are line numbers from 1, blank lines counted, as an editor shows
them, so an error, a reject or a trace cites the line a person can open.

User data being loaded for preparation goes through `mixforge.data.load` instead: there a bad line is a
rejected row (output), here it is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from mixforge.errors import DataError


def read_jsonl(path: str | os.PathLike[str], *, skip_malformed: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row, object) for each non-blank line. A line that is not a JSON object raises `DataError` naming
    the file and row, or, with `skip_malformed` (a log that may still be being written), is skipped."""
    path = os.fspath(path)
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    with fh:
        for row, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                if skip_malformed:
                    continue
                raise DataError(f"not valid JSON ({exc.msg})", path=path, row=row) from None
            if not isinstance(obj, dict):
                if skip_malformed:
                    continue
                raise DataError("each line must be a JSON object", path=path, row=row)
            yield row, obj
