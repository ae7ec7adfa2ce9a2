"""Fixtures of the mixture-search tests: a toy domain task (train, validation, test, labels), a small
multiple-choice file, and a run config on the tiny-chat model mixing in the shipped math data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

LABELS = ["Billing > Refund", "Delivery > Late", "Account > Login"]
WORDS = ["refund", "late", "password"]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def sft_rows(n: int, prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{i}", "messages": [{"role": "user", "content": f"Feedback {i}: my {WORDS[i % 3]} issue"},
                                                 {"role": "assistant", "content": LABELS[i % 3]}]}
            for i in range(n)]


@pytest.fixture(scope="session")
def search_files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("search_data")
    labels = root / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    mc = [{"id": f"q{i}", "question": f"What is {i} plus {i + 1}?",
           "choices": [str(2 * i + 1 + d) for d in (0, 1, 2, 3)], "answer": "ABCD"[i % 4]} for i in range(12)]
    return {"train": write_jsonl(root / "train.jsonl", sft_rows(48, "s")),
            "validation": write_jsonl(root / "validation.jsonl", sft_rows(8, "v")),
            "test": write_jsonl(root / "test.jsonl", sft_rows(9, "t")),
            "general": write_jsonl(root / "general_mc.jsonl", mc), "labels": str(labels), "root": str(root)}


@pytest.fixture
def run_yaml(tiny_model_dir, search_files, tmp_path) -> Path:
    """A full-rank run of 6 steps (the 'full budget') mixing the shipped math data in."""
    data = {"model": str(tiny_model_dir), "method": "sft_full", "data_path": search_files["train"],
            "validation_path": search_files["validation"], "output_path": str(tmp_path / "runs" / "toy"),
            "job_name": "toy", "data_mixing_enabled": True,
            "mixing": {"customer_data_percent": 50, "general_data": "embedded", "categories": {"math": 100}},
            "overrides": {"max_steps": 6, "global_batch_size": 4, "micro_batch_size": 4, "learning_rate": 1e-2,
                          "eval_batches": 1, "max_seq_len": 64},
            "tracking": {"experiment_name": "toy-search"}}
    path = tmp_path / "run.yaml"
    path.write_text("# mixforge train --config run.yaml\n" + yaml.safe_dump(data, sort_keys=False))
    return path
