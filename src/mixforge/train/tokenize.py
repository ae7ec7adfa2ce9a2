"""Records -> token ids and labels, with the model's own chat template.

SFT labels cover the assistant turns only: each turn's content and the token that closes it (ChatML '<|im_end|>',
Llama 3 '<|eot_id|>', Mistral '</s>'), not the newline after that token and not the next turn's header; -100
elsewhere. Truncation at `max_seq_len` is reported, never silent.

How the assistant tokens are found, for every template (with or without `{% generation %}` blocks):
1. render the conversation as text once;
2. for each assistant turn, render the conversation up to it with the generation prompt (where the turn starts)
   and through it (where it ends; for the last turn that is the full render), and check that each of these
   renders is where the full render starts;
3. map the character spans to tokens (one batched call of the Rust tokenizer; per span, the tokens holding its
   first and last character, `span_mask`; the full offsets only where that fails).
A template that rewrites earlier turns as a conversation grows (Qwen3 drops the <think> block from earlier
answers; Mistral v0.3 moves the system message to the last user turn) fails the check in step 2 and is refused
with an error naming the model and the turn: its labels would otherwise be silently misaligned.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from mixforge.errors import DataError, ModelError
from mixforge.models.render import prefix_end, render, try_render

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


_DOCUMENT_END: dict[tuple[str, str], str] = {}  # (chat template, eos) -> eos or ''


def _document_end(tokenizer) -> str:
    """The EOS a template writes after the last turn of every render without a generation prompt (Phi-3 does),
    found once per template on a two-turn probe; '' for templates that do not."""
    eos, template = tokenizer.eos_token, tokenizer.chat_template
    if not eos:
        return ""
    if (template, eos) not in _DOCUMENT_END:
        probe = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
        one, two = try_render(tokenizer, probe), try_render(tokenizer, probe + probe)
        appends = (one is not None and two is not None and not two.startswith(one)
                   and prefix_end(one, two, eos=eos) is not None)
        _DOCUMENT_END[(template, eos)] = eos if appends else ""
    return _DOCUMENT_END[(template, eos)]


def _rewrites_earlier_turns(tokenizer, index: int, messages: list[dict], what: str) -> DataError:
    name = getattr(tokenizer, "name_or_path", "") or "this model"
    return DataError(
        f"the chat template of {name} rewrites earlier turns: the conversation rendered {what} turn {index} "
        f"({messages[index]['role']}) is not how the whole conversation starts, so the assistant tokens of turn "
        f"{index} cannot be located and labels would be misaligned",
        field=f"messages.{index}",
        hint="known cases: Qwen3 drops <think> blocks from earlier answers in multi-turn conversations, Mistral "
        "v0.3 moves the system message to the last user turn; train on single-turn records or set a "
        "prefix-stable chat template on the tokenizer",
    )


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each assistant turn's content plus its closing
    token. Raises DataError where the template rewrites earlier turns (see the module docstring)."""
    full = render(tokenizer, messages)
    eos = tokenizer.eos_token
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        head = try_render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        start = prefix_end(head, full, eos=eos) if head is not None else None
        if start is None:
            raise _rewrites_earlier_turns(tokenizer, i, messages, "up to")
        through = full if i == len(messages) - 1 else render(tokenizer, messages[: i + 1])  # the last turn: full
        end = prefix_end(through, full, eos=eos)
        if end is None or end < start:
            raise _rewrites_earlier_turns(tokenizer, i, messages, "through")
        if end == len(full) and eos and full.endswith(eos) and _document_end(tokenizer):
            end -= len(eos)  # Phi-3's final EOS follows the turn's own '<|end|>\n'
        while end > start and full[end - 1].isspace():  # the newline after '<|im_end|>' is not the answer's
            end -= 1
        while start < end and full[start].isspace():
            start += 1
        spans.append((start, end))
    return full, spans


def loss_mask(offsets: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """A token carries loss when its characters [a, b) overlap an assistant span: the first span that ends after
    a starts before b. offsets (tokens, 2) -> (tokens,) bool."""
    if not spans or not len(offsets):
        return np.zeros(len(offsets), dtype=bool)
    starts, ends = np.asarray(spans, dtype=np.int64).T  # sorted, disjoint: one per assistant turn, in order
    k = np.searchsorted(ends, offsets[:, 0], side="right")
    inside = k < len(ends)
    return inside & (offsets[:, 1] > starts[np.minimum(k, len(ends) - 1)])


def span_mask(encoding, spans: list[tuple[int, int]], n: int) -> np.ndarray | None:
    """`loss_mask` from a Rust `tokenizers.Encoding` without its offsets list: per span, the token holding its
    first and its last character (`char_to_token`), widened over neighbours that share those characters (a
    multi-byte character split across byte-level tokens). None where a span edge lies in no token (a character
    the normalizer dropped): the caller then uses the offsets."""
    mask = np.zeros(n, dtype=bool)
    for start, end in spans:
        if end <= start:
            continue
        a, b = encoding.char_to_token(start), encoding.char_to_token(end - 1)
        if a is None or b is None:
            return None
        while a > 0 and (chars := encoding.token_to_chars(a - 1)) is not None and chars[1] > start:
            a -= 1
        while b + 1 < n and (chars := encoding.token_to_chars(b + 1)) is not None and chars[0] < end:
            b += 1
        mask[a : b + 1] = True
    return mask


def encode_chats(tokenizer, conversations: list[list[dict]], *, max_seq_len: int
                 ) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Conversations -> per conversation (ids int32, loss mask bool, tokens cut off at max_seq_len), with one
    batched call of the Rust tokenizer and no per-token Python work (what the token store writes)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{getattr(tokenizer, 'name_or_path', 'this tokenizer')} is not a fast tokenizer: "
                         "assistant-only labels need its character offsets",
                         hint="load it with AutoTokenizer.from_pretrained(..., use_fast=True)")
    if not conversations:
        return []
    rendered = [assistant_spans(tokenizer, messages) for messages in conversations]
    texts = [text for text, _ in rendered]
    # the Rust encodings, without building every token's offsets as Python tuples (span edges are looked up per
    # span instead). The backend is called directly only while it is set up as tokenizer(texts,
    # add_special_tokens=False) leaves it (no truncation, no padding, special tokens as the tokenizer says);
    # otherwise through that call, which resets it so.
    backend = tokenizer.backend_tokenizer
    plain = (backend.truncation is None and backend.padding is None
             and backend.encode_special_tokens == bool(getattr(tokenizer, "split_special_tokens", False)))
    encodings = (backend.encode_batch(texts, add_special_tokens=False) if plain
                 else tokenizer(texts, add_special_tokens=False).encodings)
    out = []
    for (_, spans), encoding in zip(rendered, encodings, strict=True):
        ids = np.asarray(encoding.ids, dtype=np.int32)
        mask = span_mask(encoding, spans, len(ids))
        if mask is None:
            offsets = encoding.offsets
            flat = np.fromiter(itertools.chain.from_iterable(offsets), dtype=np.int64, count=2 * len(offsets))
            mask = loss_mask(flat.reshape(-1, 2), spans)
        out.append((ids[:max_seq_len], mask[:max_seq_len], max(0, len(ids) - max_seq_len)))
    return out


def tokenize_chat_batch(tokenizer, conversations: list[list[dict]], *, max_seq_len: int) -> list[Tokenized]:
    """Conversations -> ids and assistant-only labels, with one batched tokenizer call."""
    return [Tokenized(ids.tolist(), np.where(mask, ids, IGNORE).tolist(), cut)
            for ids, mask, cut in encode_chats(tokenizer, conversations, max_seq_len=max_seq_len)]


def tokenize_chat(tokenizer, messages: list[dict], *, max_seq_len: int) -> Tokenized:
    """A conversation, labels on the assistant turns only."""
    return tokenize_chat_batch(tokenizer, [messages], max_seq_len=max_seq_len)[0]


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
