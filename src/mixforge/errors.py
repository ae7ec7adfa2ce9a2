"""The few exceptions mixforge raises on purpose. The CLI turns each into one red line and exit code 1."""

from __future__ import annotations


class MixforgeError(Exception):
    """Base of every error mixforge raises for a user to read (not a bug)."""

    hint: str | None = None


class ConfigError(MixforgeError):
    """A configuration breaks one or more rules; every problem is listed, field by field."""

    def __init__(self, problems: list[str] | str, *, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.hint = hint
        super().__init__("; ".join(self.problems))


class DataError(MixforgeError):
    """Input data that cannot be used, located by file, row (1-based) and field."""

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        row: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason, self.path, self.row, self.field, self.hint = reason, path, row, field, hint
        where = ", ".join(
            p for p in (path and f"{path}", row is not None and f"row {row}", field and f"field {field!r}") if p
        )
        super().__init__(f"{where}: {reason}" if where else reason)


class ModelError(MixforgeError):
    """A model that cannot be found, built or loaded."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)
