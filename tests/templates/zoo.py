"""The template zoo: the chat-template families of real open models, as offline tokenizer (and tiny model)
directories.

Each family is a small byte-level BPE tokenizer, trained in well under a second on the corpus the package ships,
that carries the family's special tokens (with the same special / additional-special split as the published
tokenizer) and the family's REAL Jinja chat template, byte for byte, from `jinja/<family>.jinja`:

    chatml_default_system  HuggingFaceTB/SmolLM2-135M-Instruct: ChatML that inserts a default system turn; its
                           bos_token is "<|im_start|>" although the template never writes a BOS (the quirk that
                           made `role_markers` strip "<|im_start|>" and report "system\\n")
    chatml_qwen3           Qwen/Qwen3-*: ChatML without a default system turn; renders the LAST assistant turn
                           with a "<think>...</think>" block and strips it from earlier ones (not prefix-stable)
    llama3                 meta-llama/Meta-Llama-3-8B-Instruct: <|start_header_id|>role<|end_header_id|>\\n\\n,
                           <|eot_id|>; the header tokens are special but not in `additional_special_tokens`
    gemma                  google/gemma-3-*-it: no system role (folded into the first user turn), role "model",
                           <start_of_turn> / <end_of_turn>
    mistral                mistralai/Mistral-7B-Instruct-v0.3: [INST] ... [/INST], </s>; the system message is
                           folded into the LAST user turn (so earlier turns change as the conversation grows)
    phi3                   microsoft/Phi-3-mini-4k-instruct: <|user|>\\n, <|end|>\\n, <|assistant|>\\n; a render
                           without a generation prompt ends with the EOS token "<|endoftext|>"

Sources of the template text: the `Original templates` TRL keeps for identity comparison with the hub
(trl/chat_templates/{qwen3,llama3,gemma3,phi3}.jinja), SmolLM2's tokenizer_config.json, and Mistral v0.3's
template as llama.cpp's tests/test-chat-template.cpp carries it.

    build_zoo_tokenizer("llama3", out_dir)  -> str  # AutoTokenizer.from_pretrained(out_dir) loads it
    build_zoo_model("llama3", out_dir)      -> str  # + a tiny LlamaForCausalLM (AutoModelForCausalLM loads it)

Fixtures (session scope, built lazily, once per family): `zoo_tokenizer_dir(family) -> str`,
`zoo_model_dir(family) -> str`. The root tests/conftest.py re-exports them to every test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

JINJA_DIR = Path(__file__).parent / "jinja"
ZOO_FAMILIES: tuple[str, ...] = ("chatml_default_system", "chatml_qwen3", "llama3", "gemma", "mistral", "phi3")
VOCAB_SIZE = 1024  # BPE merges + special tokens; small enough to train in about 0.2 s


@dataclass(frozen=True)
class ZooFamily:
    """What a family's published tokenizer declares, and what its template renders (for the tests to assert)."""

    source: str  # the model whose tokenizer_config.json this family reproduces
    bos: str | None
    eos: str
    pad: str | None
    unk: str | None
    additional_special: tuple[str, ...]  # tokenizer.additional_special_tokens (also in all_special_tokens)
    other_special: tuple[str, ...] = ()  # added tokens with special=True that are NOT in all_special_tokens
    added: tuple[str, ...] = ()  # added tokens that are not special (Qwen3's <think>)
    add_bos: bool = False  # the tokenizer's post-processor prepends BOS to plain `tokenizer(text)` calls
    role_markers: dict[str, str] = field(default_factory=dict)  # role -> the text just before its content
    end_of_turn: str = ""  # the token that closes an assistant turn (carries loss)
    generation_prompt: str = ""  # what add_generation_prompt=True appends
    generation_eos: tuple[str, ...] = ()  # generation_config.eos_token_id, as tokens
    system_role: bool = True  # False: the template folds a system message into a user turn


FAMILIES: dict[str, ZooFamily] = {
    "chatml_default_system": ZooFamily(
        source="HuggingFaceTB/SmolLM2-135M-Instruct",
        bos="<|im_start|>", eos="<|im_end|>", pad="<|im_end|>", unk="<|endoftext|>",
        additional_special=("<|im_start|>", "<|im_end|>"),
        other_special=("<repo_name>", "<file_sep>", "<filename>", "<gh_stars>"),
        role_markers={"system": "<|im_start|>system\n", "user": "<|im_start|>user\n",
                      "assistant": "<|im_start|>assistant\n"},
        end_of_turn="<|im_end|>", generation_prompt="<|im_start|>assistant\n", generation_eos=("<|im_end|>",),
    ),
    "chatml_qwen3": ZooFamily(
        source="Qwen/Qwen3-0.6B",
        bos=None, eos="<|im_end|>", pad="<|endoftext|>", unk=None,
        additional_special=("<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                            "<|box_start|>", "<|box_end|>", "<|vision_start|>", "<|vision_end|>"),
        other_special=("<|endoftext|>",),
        added=("<tool_call>", "</tool_call>", "<think>", "</think>", "<tool_response>", "</tool_response>"),
        role_markers={"system": "<|im_start|>system\n", "user": "<|im_start|>user\n",
                      "assistant": "<|im_start|>assistant\n"},
        end_of_turn="<|im_end|>", generation_prompt="<|im_start|>assistant\n",
        generation_eos=("<|im_end|>", "<|endoftext|>"),
    ),
    "llama3": ZooFamily(
        source="meta-llama/Meta-Llama-3-8B-Instruct",
        bos="<|begin_of_text|>", eos="<|eot_id|>", pad=None, unk=None,
        additional_special=(),
        other_special=("<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                       "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_2|>"),
        add_bos=True,
        role_markers={"system": "<|start_header_id|>system<|end_header_id|>\n\n",
                      "user": "<|start_header_id|>user<|end_header_id|>\n\n",
                      "assistant": "<|start_header_id|>assistant<|end_header_id|>\n\n"},
        end_of_turn="<|eot_id|>", generation_prompt="<|start_header_id|>assistant<|end_header_id|>\n\n",
        generation_eos=("<|end_of_text|>", "<|eot_id|>"),
    ),
    "gemma": ZooFamily(
        source="google/gemma-3-1b-it",
        bos="<bos>", eos="<eos>", pad="<pad>", unk="<unk>",
        additional_special=("<start_of_turn>", "<end_of_turn>"),
        other_special=("<mask>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"),
        add_bos=True,
        role_markers={"user": "<start_of_turn>user\n", "assistant": "<start_of_turn>model\n"},
        end_of_turn="<end_of_turn>", generation_prompt="<start_of_turn>model\n",
        generation_eos=("<eos>", "<end_of_turn>"), system_role=False,
    ),
    "mistral": ZooFamily(
        source="mistralai/Mistral-7B-Instruct-v0.3",
        bos="<s>", eos="</s>", pad=None, unk="<unk>",
        additional_special=(),
        other_special=("[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                       "[TOOL_RESULTS]", "[/TOOL_RESULTS]"),
        add_bos=True,
        # no generation prompt: the model answers right after the user turn's "[/INST]"
        role_markers={"user": "[INST] ", "assistant": "[/INST] "},
        end_of_turn="</s>", generation_prompt="", generation_eos=("</s>",), system_role=False,
    ),
    "phi3": ZooFamily(
        source="microsoft/Phi-3-mini-4k-instruct",
        bos="<s>", eos="<|endoftext|>", pad="<|endoftext|>", unk="<unk>",
        additional_special=(),
        other_special=("<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|system|>", "<|end|>",
                       "<|user|>"),
        role_markers={"system": "<|system|>\n", "user": "<|user|>\n", "assistant": "<|assistant|>\n"},
        end_of_turn="<|end|>", generation_prompt="<|assistant|>\n",
        generation_eos=("<|endoftext|>", "<|assistant|>", "<|end|>"),
    ),
}


def chat_template(family: str) -> str:
    """The family's published chat template, exactly as the model ships it."""
    return (JINJA_DIR / f"{_check(family)}.jinja").read_text(encoding="utf-8")


def _check(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"unknown zoo family {family!r}; choose one of {', '.join(ZOO_FAMILIES)}")
    return family


def _corpus() -> list[str]:
    from mixforge.models.tiny import corpus_texts

    return corpus_texts()


def make_zoo_tokenizer(family: str):
    """The family's tokenizer as a `PreTrainedTokenizerFast` (in memory)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    spec = FAMILIES[_check(family)]
    specials = list(dict.fromkeys(t for t in (spec.pad, spec.bos, spec.eos, spec.unk, *spec.additional_special,
                                              *spec.other_special) if t))
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer)
    if spec.added:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in spec.added])
    if spec.add_bos:
        bos_id = tok.token_to_id(spec.bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{spec.bos} $A", pair=f"{spec.bos} $A {spec.bos} $B", special_tokens=[(spec.bos, bos_id)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=spec.bos,
        eos_token=spec.eos,
        pad_token=spec.pad,
        unk_token=spec.unk,
        additional_special_tokens=list(spec.additional_special),
        chat_template=chat_template(family),
        model_max_length=512,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )


def build_zoo_tokenizer(family: str, out_dir: str | os.PathLike[str]) -> str:
    """Train the family's tokenizer and save it as a standard Hugging Face tokenizer directory at `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    make_zoo_tokenizer(family).save_pretrained(out)
    return str(out)


def build_zoo_model(family: str, out_dir: str | os.PathLike[str], *, seed: int = 0) -> str:
    """A tiny LlamaForCausalLM (about 40k parameters) with the family's tokenizer, saved as a model directory:
    `model_info`, `data prepare`, training and generation run on it like on the published model."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from mixforge.models.save import save_model_dir

    spec = FAMILIES[_check(family)]
    tokenizer = make_zoo_tokenizer(family)
    ids = {name: tokenizer.convert_tokens_to_ids(t) if t else None
           for name, t in (("bos", spec.bos), ("eos", spec.eos), ("pad", spec.pad))}
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=32, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=ids["bos"], eos_token_id=ids["eos"],
                         pad_token_id=ids["pad"])
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos"], pad_token_id=ids["pad"],
        eos_token_id=[tokenizer.convert_tokens_to_ids(t) for t in spec.generation_eos])
    save_model_dir(model, tokenizer, out_dir)
    return str(out_dir)


# ---- fixtures (the root tests/conftest.py imports these so that every test directory sees them) -------------
@pytest.fixture(scope="session")
def zoo_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory):
    """`zoo_tokenizer_dir(family) -> str`: the family's tokenizer directory, built once per session."""
    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = build_zoo_tokenizer(family, tmp_path_factory.mktemp(f"zoo-tok-{family}"))
        return built[family]

    return get


@pytest.fixture(scope="session")
def zoo_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """`zoo_model_dir(family) -> str`: a tiny model directory with the family's tokenizer, built once per session."""
    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = build_zoo_model(family, tmp_path_factory.mktemp(f"zoo-model-{family}") / family)
        return built[family]

    return get
