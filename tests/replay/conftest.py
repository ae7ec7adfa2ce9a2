"""Fixtures of the replay tests: the bundled chat base model (it answers the bundled prompts)."""

from __future__ import annotations

import pytest
from replay_helpers import BASE


@pytest.fixture(scope="session")
def base_model() -> str:
    return BASE
