from __future__ import annotations

import os
from pathlib import Path

import pytest
from runtime_helpers import write_jsonl

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def sft_data(tmp_path_factory) -> str:
    """48 toy feedback records whose label follows from one key word."""
    words, labels = ["refund", "late", "password"], ["Billing > Refund", "Delivery > Late", "Account > Login"]
    rows = [{"id": f"s{i}", "messages": [{"role": "user", "content": f"Feedback {i}: my {words[i % 3]} issue"},
                                         {"role": "assistant", "content": labels[i % 3]}]} for i in range(48)]
    return write_jsonl(tmp_path_factory.mktemp("toy") / "sft.jsonl", rows)


@pytest.fixture
def spy_path(monkeypatch) -> Path:
    """Puts this folder on the PYTHONPATH of launched processes, so `record_batches_entry` imports there."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p))
    return HERE
