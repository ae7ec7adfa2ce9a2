"""Generative QA: greedy answers scored by exact match and token F1 (SQuAD's normalization: lowercase, no
punctuation, no English articles), the best over each question's reference answers."""

from __future__ import annotations

import time
from collections.abc import Callable

from mixforge.eval.generate import generate_texts, uses_chat
from mixforge.eval.metrics import exact_match, token_f1
from mixforge.eval.tasks import EvalTask, TaskResult, parse_qa, read_records


def evaluate_generative(
    model,
    tokenizer,
    task: EvalTask,
    *,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> TaskResult:
    started = time.perf_counter()
    examples = parse_qa(read_records(task.path, subset=task.subset, split=task.split), path=task.path,
                        text_field=task.text_field)
    examples = examples[: task.limit] if task.limit else examples
    replies = generate_texts(model, tokenizer, [e.messages for e in examples], chat=task.chat,
                             max_new_tokens=task.max_new_tokens, batch_size=batch_size, progress=progress)
    records = []
    for e, reply in zip(examples, replies, strict=True):
        em, f1 = exact_match(reply, e.answers), token_f1(reply, e.answers)
        records.append({"id": e.id, "pred": reply, "answers": list(e.answers), "exact_match": em, "f1": f1,
                        "correct": em})
    n = len(records) or 1
    return TaskResult(
        task=task.name,
        kind="generative",
        metrics={"exact_match": sum(r["exact_match"] for r in records) / n, "f1": sum(r["f1"] for r in records) / n},
        examples=records,
        details={"chat_template": uses_chat(tokenizer, task.chat)},
        settings=task.settings(),
        seconds=time.perf_counter() - started,
    )
