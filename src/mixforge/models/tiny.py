"""Tiny-model factory: a Llama-architecture causal LM built from config, with its own byte-level BPE tokenizer
and chat template, saved as a standard Hugging Face directory.

    build_tiny("tiny-chat", seed=0, out_dir="models/tiny")   # seconds on a CPU, identical bytes for one seed

The directory loads with plain `AutoModelForCausalLM.from_pretrained(dir)` / `AutoTokenizer.from_pretrained(dir)`,
so every test goes through the same `from_pretrained` path a user's hub model takes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# The chat template's own special tokens: they are what the sanitizer must keep out of user data.
BOS, EOS, PAD = "<|bos|>", "<|end|>", "<|pad|>"
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
SPECIAL_TOKENS = [PAD, BOS, EOS, *ROLE_TOKENS.values()]

# One turn is `<|role|>\n{content}<|end|>\n`; the conversation starts with <|bos|>. The `generation` block marks
# the assistant tokens that carry the SFT loss (`return_assistant_tokens_mask=True` in apply_chat_template).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role: ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ message['content'] + '<|end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyPreset:
    """Sizes of one tiny Llama. Parameter counts assume tied input/output embeddings."""

    vocab_size: int  # BPE vocabulary the tokenizer is trained to (special tokens included)
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512


PRESETS: dict[str, TinyPreset] = {
    "tiny-100k": TinyPreset(1024, 48, 2, 4, 2, 128),  # about 0.1M parameters
    "tiny-chat": TinyPreset(2048, 64, 2, 4, 2, 192),  # about 0.25M: the default for tests
    "tiny-1m": TinyPreset(4096, 128, 4, 4, 2, 384),  # about 1.3M
    "tiny-5m": TinyPreset(8192, 256, 4, 8, 4, 688),  # about 5M
    "tiny-20m": TinyPreset(8192, 512, 6, 8, 4, 1376, 1024),  # about 21M
}


def corpus_texts() -> list[str]:
    """The text the package ships for tokenizer training (Python standard-library documentation)."""
    text = resources.files("mixforge.assets").joinpath("tokenizer_corpus.txt").read_text(encoding="utf-8")
    return [t for t in text.split("\n\n") if t.strip()]


def train_tokenizer(texts: Iterable[str], *, vocab_size: int, model_max_length: int = 512):
    """Train a byte-level BPE tokenizer on `texts` and wrap it with the chat template and special tokens.

    Deterministic for the same texts and vocabulary size. Returns a `transformers` fast tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte is a token: nothing is ever unknown
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS.values()),
        chat_template=CHAT_TEMPLATE,
        model_max_length=model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )


def build_model(preset: TinyPreset, *, vocab_size: int, seed: int, special_ids: dict[str, int]):
    """A randomly initialized LlamaForCausalLM; the same seed gives bitwise-identical weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=preset.hidden_size,
        num_hidden_layers=preset.num_hidden_layers,
        num_attention_heads=preset.num_attention_heads,
        num_key_value_heads=preset.num_key_value_heads,
        intermediate_size=preset.intermediate_size,
        max_position_embeddings=preset.max_position_embeddings,
        tie_word_embeddings=True,
        rms_norm_eps=1e-5,
        bos_token_id=special_ids["bos"],
        eos_token_id=special_ids["eos"],
        pad_token_id=special_ids["pad"],
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)  # building a model never disturbs the caller's RNG
    model.generation_config.pad_token_id = special_ids["pad"]
    model.generation_config.eos_token_id = special_ids["eos"]
    return model


def build_tiny(
    preset: str = "tiny-chat",
    *,
    seed: int = 0,
    out_dir: str | os.PathLike[str],
    texts: Iterable[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Build preset `preset` with `seed` and save it as a Hugging Face directory at `out_dir` (atomically).

    `texts` trains the tokenizer; by default the corpus the package ships.
    """
    from mixforge.errors import ModelError

    if preset not in PRESETS:
        raise ModelError(f"unknown tiny preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ModelError(f"{out} exists already", hint="pass overwrite=True (CLI: --overwrite) to replace it")

    tokenizer = train_tokenizer(
        corpus_texts() if texts is None else texts,
        vocab_size=spec.vocab_size,
        model_max_length=spec.max_position_embeddings,
    )
    special_ids = {
        "bos": tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id,
        "pad": tokenizer.pad_token_id,
    }
    model = build_model(spec, vocab_size=len(tokenizer), seed=seed, special_ids=special_ids)

    from mixforge.models.save import save_model_dir

    return save_model_dir(model, tokenizer, out)


def parameter_count(model) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
