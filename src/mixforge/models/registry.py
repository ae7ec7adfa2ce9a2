"""Resolve a model name (tiny preset, local directory or hub id) and read what mixforge needs to know about it
from the model's own config and tokenizer: chat template, special tokens, role markers, LoRA target modules
and maximum sequence length.

All three kinds of name go through the same `from_pretrained` calls. Weights load with safetensors only, and
`trust_remote_code` stays off unless the caller asks for it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mixforge.errors import ModelError
from mixforge.models.render import prefix_end, try_render
from mixforge.models.tiny import PRESETS

# Bumped when the factory's output changes, so cached presets are rebuilt rather than reused.
FACTORY_VERSION = "1"

# Sentinels rendered through a model's chat template to find the literal text around each role's content.
_SENTINEL = {"system": "\x01SYS\x01", "user": "\x01USR\x01", "assistant": "\x01AST\x01", "user2": "\x01USR2\x01"}

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def mixforge_home() -> Path:
    """Where mixforge keeps built presets, the job registry and caches (`MIXFORGE_HOME` moves it)."""
    return Path(os.environ.get("MIXFORGE_HOME", Path.home() / ".cache" / "mixforge"))


def is_preset(model: str) -> bool:
    return model in PRESETS or model.split("@", 1)[0] in PRESETS


def resolve(model: str | os.PathLike[str]) -> str:
    """A name `from_pretrained` accepts: a preset is built once into MIXFORGE_HOME (`tiny-chat@seed` picks the
    seed), a local directory is returned as it is, anything else is passed on as a hub id."""
    name = str(model)
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if is_preset(name):
        preset, _, seed = name.partition("@")
        out = mixforge_home() / "models" / f"{preset}-seed{seed or 0}-v{FACTORY_VERSION}"
        if not (out / "config.json").exists():
            from mixforge.models.tiny import build_tiny

            build_tiny(preset, seed=int(seed or 0), out_dir=out, overwrite=True)
        return str(out)
    if name.startswith((".", "/", "~")) or not _is_repo_id(name):
        raise ModelError(
            f"model {name!r} is not a directory, a tiny preset ({', '.join(PRESETS)}) or a hub id",
            hint="check the path; a hub id looks like 'Qwen/Qwen2.5-0.5B-Instruct'",
        )
    return name  # a hub id: from_pretrained downloads it (or reads the local HF cache)


def _is_repo_id(name: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _hub_error(name: str, exc: Exception) -> ModelError:
    return ModelError(
        f"cannot load model {name!r}: {type(exc).__name__}: {exc}".splitlines()[0][:400],
        hint="a hub id needs network access (or the model in the local Hugging Face cache); "
        "offline, use a local directory or a tiny preset such as 'tiny-chat'",
    )


def load_tokenizer(model: str, *, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve(model)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _hub_error(str(model), exc) from exc


def load_model(model: str, *, precision: str = "fp32", trust_remote_code: bool = False, device: str | None = None):
    """`AutoModelForCausalLM.from_pretrained` with safetensors only; precision is fp32 (CPU default), bf16 or fp16."""
    import torch
    from transformers import AutoModelForCausalLM

    if precision not in DTYPES:
        raise ModelError(f"precision {precision!r} is not one of {', '.join(DTYPES)}")
    path = resolve(model)
    try:
        loaded = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=getattr(torch, DTYPES[precision]),
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError) as exc:
        raise _hub_error(str(model), exc) from exc
    return loaded.to(device) if device else loaded


@dataclass(frozen=True)
class ModelInfo:
    """What mixforge reads from a model's own files."""

    name: str
    path: str
    model_type: str
    chat_template: str | None
    special_tokens: list[str]
    role_markers: dict[str, str]  # role -> the literal text the template puts before that role's content
    lora_target_modules: list[str] | str
    max_seq_len: int
    eos_token: str | None
    pad_token: str | None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def reserved_strings(self) -> list[str]:
        """Every string in user data that would collide with this model's template: special tokens and the role
        markers, each a whole string, longest first so a longer match is found before its prefix. A string of
        only word characters and spaces ('system', 'model') is never reserved: it is ordinary text."""
        markers = {m.strip() for m in self.role_markers.values()}
        return sorted({s for s in set(self.special_tokens) | markers if not is_plain_words(s)},
                      key=lambda s: (-len(s), s))


def is_plain_words(text: str) -> bool:
    """True for '', 'system' or 'end of turn': text that cannot be told apart from a user's own words."""
    return re.fullmatch(r"[\w\s]*", text) is not None


def special_tokens(tokenizer) -> list[str]:
    """The tokenizer's special tokens: the named ones (bos, eos, ...) and every added token flagged special,
    which is where Llama 3 keeps '<|start_header_id|>' and Phi-3 '<|user|>'."""
    flagged = {t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.special}
    return sorted(set(tokenizer.all_special_tokens) | flagged)


def role_markers(tokenizer) -> dict[str, str]:
    """The literal text the chat template writes just before each role's content (ChatML: '<|im_start|>user\\n',
    Llama 3: '<|start_header_id|>user<|end_header_id|>\\n\\n', Gemma: '<start_of_turn>user\\n', Mistral: '[INST] ').

    Found by rendering sentinel messages through the template:
    - user: what a user turn adds after an earlier turn (so a default system turn or a BOS is never part of it);
    - assistant: the generation prompt; without one, the text between the user's content and the assistant's,
      less what closes the user turn, unless that leaves only blanks (Mistral answers right after '[/INST] ');
    - system: the text before the system content, less a BOS token the template writes itself. Left out where the
      template refuses a system message or folds it into a user turn (Gemma, Mistral).
    A token is only stripped as BOS where the template writes `bos_token`: SmolLM2 declares '<|im_start|>' as its
    BOS, and stripping it turned the system marker into the bare word 'system\\n'."""
    if not getattr(tokenizer, "chat_template", None):
        return {}
    eos = tokenizer.eos_token
    s, u1, a1, u2 = (_SENTINEL["system"], _SENTINEL["user"], _SENTINEL["assistant"], _SENTINEL["user2"])

    def turn(role: str, content: str) -> dict[str, str]:
        return {"role": role, "content": content}

    user = None
    for base in ([turn("user", u1), turn("assistant", a1)], [turn("user", u1)]):
        before, after = try_render(tokenizer, base), try_render(tokenizer, [*base, turn("user", u2)])
        if before is None or after is None or u2 not in after:
            continue
        at = prefix_end(before, after, eos=eos)
        if at is not None:
            user = after[at : after.index(u2, at)]
            break

    assistant = None
    plain = try_render(tokenizer, [turn("user", u1)])
    prompt = try_render(tokenizer, [turn("user", u1)], add_generation_prompt=True)
    at = prefix_end(plain, prompt, eos=eos) if plain is not None and prompt is not None else None
    if at is not None and prompt[at:].strip():
        assistant = prompt[at:]
    elif (text := try_render(tokenizer, [turn("user", u1), turn("assistant", a1)])) and u1 in text and a1 in text:
        between = text[text.index(u1) + len(u1) : text.index(a1)]
        closing = plain.split(u1, 1)[1] if plain and u1 in plain else ""  # what ends the user turn
        if eos and closing.endswith(eos) and not between.startswith(closing):
            closing = closing[: -len(eos)]
        rest = between[len(closing) :] if closing and between.startswith(closing) else between
        assistant = rest if rest.strip() else between

    system = None
    text = try_render(tokenizer, [turn("system", s), turn("user", u1)])
    if text and s in text and u1 in text and text.index(s) < text.index(u1):
        before, between = text[: text.index(s)], text[text.index(s) + len(s) : text.index(u1)]
        bos = tokenizer.bos_token
        if bos and "bos_token" in tokenizer.chat_template and before.startswith(bos):
            before = before[len(bos) :]
        own_turn = user in between if user and user.strip() else bool(between.strip())
        if own_turn and before.strip():
            system = before

    found = {"system": system, "user": user, "assistant": assistant}
    return {role: marker for role, marker in found.items() if marker is not None}


def lora_target_modules(model_type: str) -> list[str] | str:
    """peft's own table of LoRA targets for this architecture; 'all-linear' where peft has none."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as table

    return list(table.get(model_type, [])) or "all-linear"


def model_info(model: str, *, trust_remote_code: bool = False, with_lora_targets: bool = True) -> ModelInfo:
    """Read a model's config and tokenizer (no weights) and say what mixforge needs to know about it."""
    from transformers import AutoConfig

    path = resolve(model)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _hub_error(str(model), exc) from exc
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    positions = getattr(config, "max_position_embeddings", None) or 2048
    tok_max = getattr(tokenizer, "model_max_length", None) or positions
    return ModelInfo(
        name=str(model),
        path=path,
        model_type=config.model_type,
        chat_template=getattr(tokenizer, "chat_template", None),
        special_tokens=special_tokens(tokenizer),
        role_markers=role_markers(tokenizer),
        lora_target_modules=lora_target_modules(config.model_type) if with_lora_targets else [],
        max_seq_len=int(min(positions, tok_max)) if tok_max < 10**9 else int(positions),
        eos_token=tokenizer.eos_token,
        pad_token=tokenizer.pad_token,
    )
