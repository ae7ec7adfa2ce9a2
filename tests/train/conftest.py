from __future__ import annotations

import json

import pytest


def write_jsonl(path, rows) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return str(path)


LABELS = ["Billing > Refund", "Delivery > Late", "Account > Login"]


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    """A learnable toy domain: the label follows from one key word of the feedback."""
    root = tmp_path_factory.mktemp("toy")
    words = ["refund", "late", "password"]
    sft = [{"id": f"s{i}", "messages": [{"role": "user", "content": f"Feedback {i}: my {words[i % 3]} issue"},
                                        {"role": "assistant", "content": LABELS[i % 3]}]} for i in range(48)]
    text = [{"id": f"t{i}", "text": f"The {words[i % 3]} policy number {i} applies to {LABELS[i % 3]}."}
            for i in range(48)]
    pref = [{"id": f"p{i}", "prompt": [{"role": "user", "content": f"Feedback {i}: my {words[i % 3]} issue"}],
             "chosen": LABELS[i % 3], "rejected": LABELS[(i + 1) % 3]} for i in range(48)]
    return {"sft": write_jsonl(root / "sft.jsonl", sft), "text": write_jsonl(root / "text.jsonl", text),
            "pref": write_jsonl(root / "pref.jsonl", pref), "root": root}
