"""Classification by generation: the model writes the label after the prompt (greedy).

With a label set, decoding is constrained by a prefix trie over the labels' token ids (each followed by the
end-of-turn token): at every step only tokens that continue some label are allowed, so the answer is always a
valid label, and the cost is one decoding step per label token whatever the size of the taxonomy (a
1,000-label set costs the same steps as a 10-label one). A label is tokenized on its own, as it follows the
chat template's generation prompt. Without a label set, generation is free (max_new_tokens) and the decoded
text is the prediction.

Normalization (`task.normalize`, reported in the result's details): none, strip (trim and collapse inner
whitespace) or casefold (strip, then case-insensitive); applied to gold labels, the label set and
predictions alike. Two labels of the set that become equal are an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from mixforge.errors import DataError
from mixforge.eval.generate import decode, generate_ids, render_prompt, tok_encode, uses_chat
from mixforge.eval.metrics import classification_report, normalize_label
from mixforge.eval.tasks import (
    ClsExample,
    EvalTask,
    TaskResult,
    parse_classification,
    read_labels,
    read_records,
)


class LabelTrie:
    """A prefix tree over token-id sequences, each naming one label."""

    def __init__(self, sequences: dict[tuple[int, ...], str], stop_id: int) -> None:
        self.stop_id = stop_id
        self.root: dict[int, dict] = {}
        self.labels = dict(sequences)
        for seq in sequences:
            node = self.root
            for tok in seq:
                node = node.setdefault(tok, {})
        self.depth = max(len(s) for s in sequences)

    def allowed(self, generated: Sequence[int]) -> list[int]:
        """Tokens that may follow `generated`; after a finished label, only the stop token (padding)."""
        node = self.root
        for tok in generated:
            node = node.get(tok)
            if node is None:
                return [self.stop_id]
        return list(node) or [self.stop_id]

    def label_of(self, generated: Sequence[int]) -> str | None:
        return self.labels.get(tuple(generated))


def build_trie(tokenizer, labels: Sequence[str], stop_id: int) -> LabelTrie:
    sequences: dict[tuple[int, ...], str] = {}
    for label in labels:
        ids = tuple(tokenizer.encode(label, add_special_tokens=False)) + (stop_id,)
        if ids in sequences:
            raise DataError(f"labels {sequences[ids]!r} and {label!r} have the same tokens", field="labels")
        sequences[ids] = label
    return LabelTrie(sequences, stop_id)


def load_examples(task: EvalTask) -> list[ClsExample]:
    examples = parse_classification(read_records(task.path, subset=task.subset, split=task.split), path=task.path,
                                    text_field=task.text_field)
    return examples[: task.limit] if task.limit else examples


def predict_labels(
    model,
    tokenizer,
    conversations: Sequence[Sequence[dict[str, str]]],
    *,
    labels: Sequence[str] | None,
    chat: bool | None = None,
    max_new_tokens: int = 32,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """The label the model writes after each conversation: one of `labels` when given (constrained
    greedy decoding), else the decoded text of free greedy decoding."""
    stop_id = tokenizer.eos_token_id
    trie = build_trie(tokenizer, labels, stop_id) if labels else None
    prompts = [tok_encode(tokenizer, render_prompt(tokenizer, c, chat=chat)) for c in conversations]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # similar lengths share a batch
    predictions: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        out = generate_ids(
            model, tokenizer, [prompts[i] for i in rows],
            max_new_tokens=trie.depth if trie else max_new_tokens,
            allowed_tokens=trie.allowed if trie else None,
        )
        for i, ids in zip(rows, out, strict=True):
            if trie:
                label = trie.label_of(ids)
                if label is None:  # cannot happen under the trie; kept as a loud guard, not a silent fallback
                    raise RuntimeError(f"constrained decoding left the label set: {ids}")
                predictions[i] = label
            else:
                predictions[i] = decode(tokenizer, ids)
        if progress:
            progress(len(rows))
    return predictions


def evaluate_classification(
    model,
    tokenizer,
    task: EvalTask,
    *,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> TaskResult:
    """Accuracy, macro/micro/weighted F1, per-class report and top confusions, with every example's
    gold label, prediction and correctness in `examples`."""
    started = time.perf_counter()
    examples = load_examples(task)
    mode = task.normalize
    label_set = read_labels(task.labels) if task.labels is not None else None
    if label_set is not None:
        seen: dict[str, str] = {}
        for label in label_set:
            key = normalize_label(label, mode)
            if key in seen and seen[key] != label:
                raise DataError(f"labels {seen[key]!r} and {label!r} are equal after {mode} normalization",
                                field="labels")
            seen[key] = label
        for n, e in enumerate(examples, 1):
            if normalize_label(e.label, mode) not in seen:
                raise DataError(f"gold label {e.label!r} is not in the label set ({mode} normalization)",
                                path=task.path, row=n, field="label")
    raw = predict_labels(model, tokenizer, [e.messages for e in examples], labels=label_set, chat=task.chat,
                         max_new_tokens=task.max_new_tokens, batch_size=batch_size, progress=progress)
    gold = [normalize_label(e.label, mode) for e in examples]
    pred = [normalize_label(p, mode) for p in raw]
    report = classification_report(gold, pred)
    records = [{"id": e.id, "gold": g, "pred": p, "raw_pred": r, "correct": float(g == p)}
               for e, g, p, r in zip(examples, gold, pred, raw, strict=True)]
    return TaskResult(
        task=task.name,
        kind="classification",
        metrics={k: report[k] for k in ("accuracy", "macro_f1", "micro_f1", "weighted_f1")},
        examples=records,
        details={
            "per_class": report["per_class"],
            "confusions": report["confusions"],
            "normalization": {
                "mode": mode,
                "gold_labels_changed": sum(g != e.label for g, e in zip(gold, examples, strict=True)),
            },
            "constrained": label_set is not None,
            "label_set_size": len(label_set) if label_set is not None else None,
            "predictions_outside_gold_labels": sum(p not in set(gold) for p in pred),
            "chat_template": uses_chat(tokenizer, task.chat),
        },
        settings=task.settings(),
        seconds=time.perf_counter() - started,
    )
