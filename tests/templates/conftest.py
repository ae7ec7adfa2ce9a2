"""Fixtures of the template zoo's own tests: `family` runs a test once per zoo family (the builders and the
`zoo_tokenizer_dir` / `zoo_model_dir` fixtures live in zoo.py; tests/conftest.py shares them with every test)."""

from __future__ import annotations

import pytest
from zoo import ZOO_FAMILIES


@pytest.fixture(params=ZOO_FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param
