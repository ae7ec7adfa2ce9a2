"""Fixtures of the evaluation tests: small hand-checkable task files and a tiny model trained (plain torch,
a few dozen steps) to answer every multiple-choice question with "B" and every classification prompt with
"billing", so expected scores can be computed by hand."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

SUBJECTS = ["geography", "math"]
# the gold answers of the test questions: 5 of 12 are B, 3 of them in geography
ANSWERS = ["B", "A", "B", "C", "D", "B", "A", "B", "C", "B", "D", "A"]
# classification gold labels: the trained model always says "billing"
CLS_GOLD = ["billing", "Billing ", "refund", "shipping", "billing", "refund"]
LABELS = ["billing", "bill", "billing address", "refund", "shipping"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def mc_rows(answers: list[str], *, prefix: str = "q", seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i, answer in enumerate(answers):
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        rows.append({
            "id": f"{prefix}{i}",
            "question": f"What is {a} plus {b}?",
            "choices": [str(a + b + d) for d in (0, 1, 2, 3)],
            "answer": answer,
            "subject": SUBJECTS[i % 2],
        })
    return rows


def cls_rows(golds: list[str]) -> list[dict]:
    texts = ["I was charged twice", "Where is my invoice", "Give my money back", "The parcel is late",
             "Card declined again", "Return the shoes"]
    return [{"id": f"c{i}", "messages": [{"role": "user", "content": f"Classify: {texts[i % len(texts)]}"},
                                         {"role": "assistant", "content": g}]} for i, g in enumerate(golds)]


@pytest.fixture(scope="session")
def task_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval_tasks")
    labels = d / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return {
        "mc": write_jsonl(d / "mmlu_like.jsonl", mc_rows(ANSWERS)),
        "cls": write_jsonl(d / "voc_test.jsonl", cls_rows(CLS_GOLD)),
        "labels": labels,
        "qa": write_jsonl(d / "qa.jsonl", [{"id": "a1", "question": "Say B", "answer": "B"},
                                           {"id": "a2", "question": "Say the answer", "answers": ["the B", "x"]}]),
    }


def train_answers(model_dir: Path, out: Path, pairs: list[tuple[str, str]], *, steps: int = 60, lr: float = 3e-3,
                  seed: int = 0) -> Path:
    """Fine-tune (full, plain torch) so that each prompt is followed by its answer; loss on the answer only."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mixforge.eval.multiple_choice import encode_pair

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    encoded = []
    for context, answer in pairs:
        ctx, cont = encode_pair(tok, context, answer)
        encoded.append((ctx + cont, [-100] * len(ctx) + cont))
    torch.manual_seed(seed)
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        batch = rng.sample(encoded, min(16, len(encoded)))
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([i + [tok.pad_token_id] * (width - len(i)) for i, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
        loss = model(input_ids=ids, attention_mask=(labels != -100) | (ids != tok.pad_token_id), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def answer_b_model(tmp_path_factory, tiny_model_dir) -> Path:
    """tiny-chat fine-tuned to answer "B" to any MC prompt and "billing" to any classification prompt."""
    from transformers import AutoTokenizer

    from mixforge.eval.generate import render_prompt
    from mixforge.eval.multiple_choice import build_prompt
    from mixforge.eval.tasks import parse_mc

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rng = random.Random(1)
    train_mc = parse_mc(mc_rows([rng.choice("ABCD") for _ in range(64)], prefix="t", seed=7), path="train")
    pairs = [(build_prompt(tok, q).context, "B") for q in train_mc]
    words = ["refund please", "my bill", "shipping status", "hello", "the card", "lost parcel", "invoice"]
    pairs += [(render_prompt(tok, [{"role": "user", "content": f"Classify: {w} {i}"}]), f"billing{tok.eos_token}")
              for i in range(8) for w in words]
    return train_answers(tiny_model_dir, tmp_path_factory.mktemp("models") / "answer-b", pairs)
