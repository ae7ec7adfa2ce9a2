"""Records -> token ids and labels, with the model's own chat template.

SFT labels cover assistant tokens only (-100 elsewhere). The template's `{% generation %}` blocks give that mask
directly; for templates without them (most hub models) the mask comes from rendering growing prefixes of the
conversation, which every template supports. Truncation at `max_seq_len` is reported, never silent.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE = -100


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    truncated: int  # tokens cut off at max_seq_len

    @property
    def loss_tokens(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def has_generation_blocks(tokenizer) -> bool:
    return "{% generation %}" in (getattr(tokenizer, "chat_template", None) or "")


def _truncate(ids: list[int], labels: list[int], max_seq_len: int) -> Tokenized:
    cut = max(0, len(ids) - max_seq_len)
    return Tokenized(ids[:max_seq_len], labels[:max_seq_len], cut)


def tokenize_chat(tokenizer, messages: list[dict], *, max_seq_len: int) -> Tokenized:
    """A conversation, labels on the assistant turns only."""
    if has_generation_blocks(tokenizer):
        enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids = list(enc["input_ids"])
        labels = [t if m else IGNORE for t, m in zip(ids, enc["assistant_masks"], strict=True)]
        return _truncate(ids, labels, max_seq_len)
    # no generation blocks: the tokens that rendering the assistant turn i adds to the prompt up to turn i
    ids = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    labels = [IGNORE] * len(ids)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(tokenizer.apply_chat_template(messages[:i], tokenize=True, add_generation_prompt=True,
                                                  return_dict=True)["input_ids"])
        end = len(tokenizer.apply_chat_template(messages[: i + 1], tokenize=True, return_dict=True)["input_ids"])
        labels[start:end] = ids[start:end]
    return _truncate(ids, labels, max_seq_len)


def tokenize_text(tokenizer, text: str, *, max_seq_len: int) -> Tokenized:
    """Continued pre-training: BOS + text + EOS, every token carries loss."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id, *ids]
    if tokenizer.eos_token_id is not None:
        ids = [*ids, tokenizer.eos_token_id]
    return _truncate(ids, list(ids), max_seq_len)


def tokenize_record(tokenizer, record: dict, *, max_seq_len: int) -> Tokenized:
    """A canonical record: {"messages"} (SFT), {"text"} (CPT); a classification record's label is the
    assistant answer when the conversation does not already end with it."""
    if "messages" in record:
        messages = record["messages"]
        if "label" in record and messages and messages[-1]["role"] != "assistant":
            messages = [*messages, {"role": "assistant", "content": str(record["label"])}]
        return tokenize_chat(tokenizer, messages, max_seq_len=max_seq_len)
    if "text" in record:
        return tokenize_text(tokenizer, record["text"], max_seq_len=max_seq_len)
    raise ValueError(f"record {record.get('id', '?')} has neither 'messages' nor 'text'")


@dataclass(frozen=True)
class TokenizedPair:
    chosen: Tokenized
    rejected: Tokenized


def tokenize_preference(tokenizer, record: dict, *, max_seq_len: int) -> TokenizedPair:
    """DPO: the prompt conversation followed by the chosen or the rejected answer; labels on the answer."""
    prompt = list(record["prompt"])

    def answer(value) -> list[dict]:
        return list(value) if isinstance(value, list) else [{"role": "assistant", "content": str(value)}]

    return TokenizedPair(
        tokenize_chat(tokenizer, prompt + answer(record["chosen"]), max_seq_len=max_seq_len),
        tokenize_chat(tokenizer, prompt + answer(record["rejected"]), max_seq_len=max_seq_len),
    )
