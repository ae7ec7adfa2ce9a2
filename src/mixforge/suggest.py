"""'Did you mean ...?' for a name that is not known: the one close spelling, so an error can name the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str], *, cutoff: float = 0.5) -> str | None:
    """The known name most like `name` (difflib's ratio at least `cutoff`), or None when none is close."""
    matches = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=cutoff)
    return matches[0] if matches else None


def did_you_mean(name: str, known: Iterable[str], *, cutoff: float = 0.5) -> str:
    """"; did you mean 'x'?" for the closest known name, or "" when none is close."""
    near = closest(name, known, cutoff=cutoff)
    return f"; did you mean {near!r}?" if near else ""
