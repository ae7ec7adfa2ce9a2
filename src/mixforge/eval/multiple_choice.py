"""Multiple choice by log-likelihood, MMLU's format, zero- or k-shot.

The prompt (documented exactly, because lm-evaluation-harness must see the same text):

    question block  = "{question}\\nA. {choice 0}\\nB. {choice 1}\\n...\\nAnswer:"
    (prompt_style="question": the question alone, no header and no options; continuations are choice texts)
    header          = "The following is a multiple choice question about {subject}." (subject's "_" -> " ";
                      "The following is a multiple choice question." without a subject), then a blank line,
                      in front of the first block only.
    header="harness": lm-evaluation-harness's MMLU prompt (its `mmlu` tasks' description and doc_to_text):
                      "The following are multiple choice questions (with answers) about {subject}." and each
                      question stripped of surrounding whitespace. Plain, zero-shot, letters: the prompt and
                      the continuations (" A", ...) are the harness's, character for character. Shots differ:
                      the harness takes the first k of the dev split, mixforge k of the same subject by seed.
    chat (default when the tokenizer has a chat template): one user turn per block; each shot is followed by
        an assistant turn holding its answer; the template is applied with add_generation_prompt=True.
        Continuations: "A", "B", ... (answer_format="letter") or the choice's own text ("text").
    plain: header + shots ("{block} {answer}", blank line between) + the question's block;
        continuations " A", " B", ... or " {choice text}".

A choice's score is the summed log-probability of its continuation tokens given the prompt. Tokenization is
lm-evaluation-harness's: trailing whitespace of the prompt moves into the continuation, prompt+continuation is
encoded as a whole and the continuation's tokens are those after the prompt's own encoding. `acc_norm` divides
each score by the length of the choice string in characters (lm-evaluation-harness's acc_norm).

Efficiency: all choices of a question share the prompt. When every continuation differs from the others only
in its last token (single letters: always), ONE forward pass over the prompt scores them all, and
questions are batched. Otherwise each prompt runs once (batched across questions) and all choices'
continuations run in one more batch that reuses the prompts' KV cache.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mixforge.eval.generate import render_prompt, tok_encode, uses_chat
from mixforge.eval.tasks import LETTERS, EvalTask, MCQuestion, TaskResult, parse_mc, read_records

HEADERS = {  # header style -> (with a subject, without one)
    "mixforge": ("The following is a multiple choice question about {subject}.",
                 "The following is a multiple choice question."),
    "harness": ("The following are multiple choice questions (with answers) about {subject}.",
                "The following are multiple choice questions (with answers)."),
}


def header(subject: str | None, style: str = "mixforge") -> str:
    with_subject, without = HEADERS[style]
    return with_subject.format(subject=subject.replace("_", " ")) if subject else without


def question_block(q: MCQuestion, style: str = "mixforge") -> str:
    options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(q.choices))
    question = q.question.strip() if style == "harness" else q.question
    return f"{question}\n{options}\nAnswer:"


def choice_strings(q: MCQuestion, answer_format: str) -> list[str]:
    """What each choice's continuation says, without the delimiter (also the acc_norm length)."""
    return list(LETTERS[: len(q.choices)]) if answer_format == "letter" else list(q.choices)


@dataclass(frozen=True)
class MCPrompt:
    """One question as text: the prompt, the delimiter before every continuation and the choice strings."""

    context: str
    delimiter: str
    choices: tuple[str, ...]

    @property
    def continuations(self) -> list[str]:
        return [self.delimiter + c for c in self.choices]


def build_prompt(
    tokenizer,
    q: MCQuestion,
    shots: Sequence[MCQuestion] = (),
    *,
    chat: bool | None = None,
    answer_format: str = "letter",
    system_prompt: str | None = None,
    prompt_style: str = "mmlu",
    header_style: str = "mixforge",
) -> MCPrompt:
    if prompt_style == "question":  # cloze: the bare question; the choices' text are the continuations
        blocks = [s.question for s in shots] + [q.question]
    else:
        blocks = [question_block(s, header_style) for s in shots] + [question_block(q, header_style)]
        blocks[0] = f"{header(q.subject, header_style)}\n\n{blocks[0]}"
    answers = [choice_strings(s, answer_format)[s.answer] for s in shots]
    choices = tuple(choice_strings(q, answer_format))
    if uses_chat(tokenizer, chat):
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        for block, answer in zip(blocks, answers, strict=False):
            messages += [{"role": "user", "content": block}, {"role": "assistant", "content": answer}]
        messages.append({"role": "user", "content": blocks[-1]})
        return MCPrompt(render_prompt(tokenizer, messages, chat=True), "", choices)
    parts = [f"{block} {answer}" for block, answer in zip(blocks, answers, strict=False)] + [blocks[-1]]
    text = "\n\n".join(parts)
    return MCPrompt(f"{system_prompt}\n\n{text}" if system_prompt else text, " ", choices)


def select_shots(
    questions: Sequence[MCQuestion], pool: Sequence[MCQuestion], k: int, seed: int
) -> list[list[MCQuestion]]:
    """k solved examples for each question: from the same subject when the pool has k of them, never the
    question itself; drawn with a RNG seeded by (seed, question id), so a question's shots do not depend
    on which other questions are evaluated."""
    if k == 0:
        return [[] for _ in questions]
    by_subject: dict[str | None, list[MCQuestion]] = defaultdict(list)
    for p in pool:
        by_subject[p.subject].append(p)
    out = []
    for q in questions:
        candidates = [p for p in by_subject.get(q.subject, []) if p.id != q.id]
        if len(candidates) < k:
            candidates = [p for p in pool if p.id != q.id]
        if len(candidates) < k:
            from mixforge.errors import ConfigError

            raise ConfigError(f"shots: {k} shots requested but the pool has only {len(candidates)} other questions")
        out.append(random.Random(f"{seed}:{q.id}").sample(candidates, k))
    return out


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness's split of (prompt, continuation) into token ids (see the module docstring)."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = tok_encode(tokenizer, context + continuation)
    ctx = tok_encode(tokenizer, context)
    return ctx, whole[len(ctx):]


def _common_prefix(rows: Sequence[Sequence[int]]) -> list[int]:
    n = min(len(r) for r in rows)
    for i in range(n):
        if any(r[i] != rows[0][i] for r in rows):
            return list(rows[0][:i])
    return list(rows[0][:n])


@dataclass
class _Request:
    index: int
    context: list[int]  # prompt tokens
    common: list[int]  # continuation tokens all choices share (e.g. a newline the prompt gave away)
    tails: list[list[int]]  # each choice's remaining tokens

    @property
    def prefix(self) -> list[int]:
        return self.context + self.common


def _requests(tokenizer, pairs: Sequence[tuple[str, Sequence[str]]], max_length: int) -> list[_Request]:
    out = []
    for i, (context, continuations) in enumerate(pairs):
        encoded = [encode_pair(tokenizer, context, c) for c in continuations]
        ctx = encoded[0][0]
        conts = [c for _, c in encoded]
        if not ctx:
            raise ValueError("multiple choice needs a non-empty prompt")
        if any(not c for c in conts):
            raise ValueError(f"an empty continuation in question {i}")
        longest = max(len(c) for c in conts)
        excess = len(ctx) + longest - 1 - max_length  # keep the last max_length input tokens, as lm-eval does
        if excess > 0:
            ctx = ctx[excess:]
        common = _common_prefix(conts)
        out.append(_Request(i, ctx, common, [c[len(common):] for c in conts]))
    return out


def score_choices(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, Sequence[str]]],
    *,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """Summed log-probability of each continuation given its prompt: `pairs` is [(prompt, [continuations])]."""
    import torch

    max_length = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    requests = _requests(tokenizer, pairs, max_length)
    scores: list[list[float] | None] = [None] * len(requests)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = model.device

    # ---- one pass per question: every choice is the shared prefix plus at most one token ------------------
    single = sorted((r for r in requests if all(len(t) <= 1 for t in r.tails)), key=lambda r: -len(r.prefix))
    for start in range(0, len(single), batch_size):
        batch = single[start:start + batch_size]
        width = max(len(r.prefix) for r in batch)
        # Right padding and no attention mask: in a causal model a real position only attends to earlier
        # positions, so pads (always later) change nothing, and attention keeps its causal fast path.
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        for row, r in enumerate(batch):
            ids[row, : len(r.prefix)] = torch.tensor(r.prefix)
        # the positions whose next-token distributions are needed: the prompt's last token onwards
        keep = sorted({p for r in batch for p in range(len(r.context) - 1, len(r.prefix))})
        where = {p: j for j, p in enumerate(keep)}
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device),
                           logits_to_keep=torch.tensor(keep, device=device)).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        for row, r in enumerate(batch):
            c0, end = len(r.context), len(r.prefix)
            shared = sum(float(logp[row, where[p - 1], r.prefix[p]]) for p in range(c0, end))
            last = logp[row, where[end - 1]]
            scores[r.index] = [shared + (float(last[t[0]]) if t else 0.0) for t in r.tails]
        if progress:
            progress(len(batch))

    # ---- longer continuations: each prompt once (a batch of questions, left-padded so every prompt ends at
    # the same column), then every choice's tail in one batch that reuses the prompts' KV cache -------------
    multi = sorted((r for r in requests if scores[r.index] is None), key=lambda r: -len(r.prefix))
    for start in range(0, len(multi), batch_size):
        batch = multi[start:start + batch_size]
        width = max(len(r.prefix) for r in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, r in enumerate(batch):
            ids[row, width - len(r.prefix):] = torch.tensor(r.prefix)
            mask[row, width - len(r.prefix):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        keep = max(len(r.common) for r in batch) + 1  # the last `keep` columns: shared tokens + first tail token
        # (question row, choice index) of every tail longer than one token; row repeats select the cache rows
        tails = [(row, i) for row, r in enumerate(batch) for i, t in enumerate(r.tails) if len(t) > 1]
        tail_width = max(len(batch[row].tails[i]) for row, i in tails) - 1
        tail_ids = torch.full((len(tails), tail_width), pad_id, dtype=torch.long)
        for n, (row, i) in enumerate(tails):  # right padding after the tail: later positions change nothing
            tail = batch[row].tails[i]
            tail_ids[n, : len(tail) - 1] = torch.tensor(tail[:-1])
        rows = torch.tensor([row for row, _ in tails])
        with torch.inference_mode():
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                        use_cache=True, logits_to_keep=keep)
            head = torch.log_softmax(out.logits.float(), dim=-1)  # (questions, keep, vocab)
            cache = out.past_key_values
            cache.batch_select_indices(rows.to(device))
            tail_mask = torch.cat([mask[rows], torch.ones((len(tails), tail_width), dtype=torch.long)], dim=1)
            tail_positions = torch.tensor([[len(batch[row].prefix) + j for j in range(tail_width)] for row, _ in tails])
            tail_logp = torch.log_softmax(model(
                input_ids=tail_ids.to(device), attention_mask=tail_mask.to(device),
                position_ids=tail_positions.to(device), past_key_values=cache, use_cache=True,
            ).logits.float(), dim=-1)
        tail_row = {key: n for n, key in enumerate(tails)}
        for row, r in enumerate(batch):
            offset = keep - len(r.common) - 1  # head column predicting the first shared token
            shared = sum(float(head[row, offset + j, tok]) for j, tok in enumerate(r.common))
            first = head[row, keep - 1]
            values = []
            for i, t in enumerate(r.tails):
                value = shared + (float(first[t[0]]) if t else 0.0)
                if len(t) > 1:
                    n = tail_row[(row, i)]
                    value += sum(float(tail_logp[n, j, t[j + 1]]) for j in range(len(t) - 1))
                values.append(value)
            scores[r.index] = values
        if progress:
            progress(len(batch))
    return scores  # type: ignore[return-value]


def _argmax(values: Sequence[float]) -> int:
    """The first index of the maximum (numpy's tie rule, which lm-evaluation-harness uses)."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def load_questions(task: EvalTask) -> list[MCQuestion]:
    questions = parse_mc(read_records(task.path, subset=task.subset, split=task.split), path=task.path)
    return questions[: task.limit] if task.limit else questions


def task_prompts(tokenizer, task: EvalTask, questions: Sequence[MCQuestion]) -> list[MCPrompt]:
    """The exact prompt of every question of `task` (shots included)."""
    if task.shots:
        pool_path = task.shots_path or task.path
        split = task.shots_split if task.shots_path else task.split  # a hub id's dev split, or the task's own
        pool = parse_mc(read_records(pool_path, subset=task.subset, split=split), path=pool_path,
                        prefix="shot" if task.shots_path else "q")
    else:
        pool = []
    shots = select_shots(questions, pool, task.shots, task.seed)
    return [build_prompt(tokenizer, q, s, chat=task.chat, answer_format=task.answer_format,
                         system_prompt=task.system_prompt, prompt_style=task.prompt_style, header_style=task.header)
            for q, s in zip(questions, shots, strict=True)]


def evaluate_multiple_choice(
    model,
    tokenizer,
    task: EvalTask,
    *,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> TaskResult:
    """Accuracy (summed log-likelihood) and acc_norm (per character), overall and per subject, with every
    question's log-likelihoods, prediction and correctness in `examples`."""
    started = time.perf_counter()
    questions = load_questions(task)
    prompts = task_prompts(tokenizer, task, questions)
    scores = score_choices(model, tokenizer, [(p.context, p.continuations) for p in prompts],
                           batch_size=batch_size, progress=progress)
    examples = []
    for q, p, lls in zip(questions, prompts, scores, strict=True):
        pred = _argmax(lls)
        pred_norm = _argmax([ll / len(c) for ll, c in zip(lls, p.choices, strict=True)])
        examples.append({
            "id": q.id, "subject": q.subject, "gold": q.answer, "pred": pred, "pred_norm": pred_norm,
            "correct": float(pred == q.answer), "correct_norm": float(pred_norm == q.answer), "logliks": lls,
        })
    return TaskResult(
        task=task.name,
        kind="multiple_choice",
        metrics=_accuracies(examples),
        examples=examples,
        details={
            "per_subject": _per_subject(examples),
            "prompt_example": {"context": prompts[0].context, "continuations": prompts[0].continuations}
            if prompts else None,
            "chat_template": uses_chat(tokenizer, task.chat),
        },
        settings=task.settings(),
        seconds=time.perf_counter() - started,
    )


def _accuracies(examples: Sequence[dict]) -> dict[str, float]:
    n = len(examples) or 1
    return {"acc": sum(e["correct"] for e in examples) / n, "acc_norm": sum(e["correct_norm"] for e in examples) / n}


def _per_subject(examples: Sequence[dict]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for e in examples:
        if e["subject"] is not None:
            groups[e["subject"]].append(e)
    return {s: {**_accuracies(g), "n": len(g)} for s, g in sorted(groups.items())}
