"""Experiment tracking: `MlflowTracker`, and `NullTracker` with the same methods for when tracking is off."""

from __future__ import annotations

from typing import Any, Protocol


class Tracker(Protocol):
    run_id: str | None

    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def log_artifact(self, path: str) -> None: ...
    def finish(self, status: str = "FINISHED") -> None: ...


class NullTracker:
    """Tracking off (or not rank 0): every call does nothing, so the training loop never asks."""

    run_id: str | None = None

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: str) -> None:
        pass

    def finish(self, status: str = "FINISHED") -> None:
        pass
