"""Prompt rendering and batched generation, shared by classification, generative QA, `mixforge generate` and
`mixforge chat`.

Prompt format: with a chat template (the default when the tokenizer has one) a prompt is the template applied
to the turns with `add_generation_prompt=True`. Without one it is plain text: each turn as
"System: ...", "User: ...", "Assistant: ..." separated by a blank line, ending in "Assistant:".

Tokenization follows lm-evaluation-harness so the two agree token for token: a string that already starts
with the BOS token's text is encoded with `add_special_tokens=False`, any other string with the tokenizer's
defaults.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mixforge.errors import DataError
from mixforge.eval.checkpoint import load_checkpoint
from mixforge.eval.tasks import _prompt_messages, read_records
from mixforge.io.atomic import write_text_atomic
from mixforge.progress import progress_bar

PLAIN_ROLE = {"system": "System", "user": "User", "assistant": "Assistant"}


def uses_chat(tokenizer, chat: bool | None) -> bool:
    """Whether prompts go through the chat template: `chat` when given, else whether there is a template."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat and not has_template:
        from mixforge.errors import ConfigError

        raise ConfigError("chat: the tokenizer has no chat template; pass chat=False for plain prompts")
    return has_template if chat is None else chat


def render_prompt(tokenizer, messages: Sequence[dict[str, str]], *, chat: bool | None = None) -> str:
    """The exact text the model is given to continue (see the module docstring)."""
    if uses_chat(tokenizer, chat):
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    turns = [f"{PLAIN_ROLE.get(m['role'], m['role'].title())}: {m['content']}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"])


def tok_encode(tokenizer, text: str) -> list[int]:
    """Token ids of `text` as lm-evaluation-harness's HFLM makes them (no second BOS)."""
    bos = tokenizer.bos_token
    if bos and text.startswith(bos):
        return tokenizer.encode(text, add_special_tokens=False)
    return tokenizer.encode(text)


def stop_token_ids(model, tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids |= set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return sorted(ids)


def left_pad(rows: Sequence[Sequence[int]], pad_id: int):
    """(input_ids, attention_mask) tensors with every row right-aligned (left padding), for generation."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = 1
    return ids, mask


def generate_ids(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    allowed_tokens: Callable[[list[int]], list[int]] | None = None,
) -> list[list[int]]:
    """Generate after each prompt (one batch, left-padded). Greedy when temperature is 0.

    `allowed_tokens(generated_so_far) -> token ids` constrains decoding (Hugging Face's
    `prefix_allowed_tokens_fn`). Returns the new token ids of each row, cut at the first stop token
    (the stop token itself is kept so a caller can tell a finished answer from a truncated one).
    """
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = stop_token_ids(model, tokenizer)
    input_ids, attention_mask = left_pad(prompts, pad_id)
    input_ids, attention_mask = input_ids.to(model.device), attention_mask.to(model.device)
    width = input_ids.shape[1]
    kwargs: dict[str, Any] = {}
    if allowed_tokens is not None:
        kwargs["prefix_allowed_tokens_fn"] = lambda _row, ids: allowed_tokens(ids[width:].tolist())
    if temperature > 0:
        torch.manual_seed(seed)
        kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            eos_token_id=stops or None,
            pad_token_id=pad_id,
            **kwargs,
        )
    result = []
    for row in out[:, width:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stops), None)
        result.append(row if cut is None else row[: cut + 1])
    return result


def decode(tokenizer, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=True).strip()


def generate_texts(
    model,
    tokenizer,
    conversations: Sequence[Sequence[dict[str, str]]],
    *,
    chat: bool | None = None,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """The model's reply to each conversation (batched; greedy unless temperature > 0)."""
    replies: list[str] = []
    for start in range(0, len(conversations), batch_size):
        batch = conversations[start:start + batch_size]
        ids = [tok_encode(tokenizer, render_prompt(tokenizer, c, chat=chat)) for c in batch]
        out = generate_ids(model, tokenizer, ids, max_new_tokens=max_new_tokens, temperature=temperature,
                           top_p=top_p, seed=seed + start)
        replies.extend(decode(tokenizer, r) for r in out)
        if progress:
            progress(len(batch))
    return replies


def read_prompts(path: str | Path) -> list[tuple[str, list[dict[str, str]]]]:
    """(id, turns) from a JSONL file of {"messages": [...]} (a final assistant turn is dropped),
    {"prompt": str} or {"text": str} records."""
    rows = read_records(str(path))
    out = []
    for n, row in enumerate(rows, 1):
        messages, _ = _prompt_messages(row, path=str(path), n=n, answer_field="answer")
        out.append((str(row.get("id", f"p{n}")), messages))
    if not out:
        raise DataError("no prompts", path=str(path))
    return out


def generate_file(
    model: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    adapter: str | None = None,
    chat: bool | None = None,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 8,
    precision: str = "fp32",
    device: str | None = None,
    show_progress: bool = True,
) -> Path:
    """Generate a reply for every prompt in `input_path`; write {"id", "messages", "output"} lines."""
    prompts = read_prompts(input_path)
    ckpt = load_checkpoint(model, adapter=adapter, precision=precision, device=device)
    with progress_bar(show_progress) as bar:
        job = bar.add_task("generate", total=len(prompts))
        replies = generate_texts(
            ckpt.model, ckpt.tokenizer, [m for _, m in prompts], chat=chat, max_new_tokens=max_new_tokens,
            temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size,
            progress=lambda k: bar.advance(job, k),
        )
    lines = [json.dumps({"id": i, "messages": m, "output": r}, ensure_ascii=False)
             for (i, m), r in zip(prompts, replies, strict=True)]
    return write_text_atomic(Path(output_path), "\n".join(lines) + "\n")
