"""The zoo itself: every family loads through `AutoTokenizer` / `AutoModelForCausalLM` and renders what the
published model renders."""

from __future__ import annotations

from zoo import FAMILIES, chat_template

CONVERSATION = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]

# What each published template renders for CONVERSATION (written out by hand from the template text).
RENDERED = {
    "chatml_default_system": "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n",
    "chatml_qwen3": "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello<|im_end|>\n",
    "llama3": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>",
    "gemma": "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n",
    "mistral": "<s>[INST] Hi[/INST] Hello</s>",
    "phi3": "<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n<|endoftext|>",
}


def test_every_family_loads_and_renders_its_published_format(family, zoo_tokenizer_dir):
    from transformers import AutoTokenizer

    spec = FAMILIES[family]
    tok = AutoTokenizer.from_pretrained(zoo_tokenizer_dir(family))
    assert tok.chat_template == chat_template(family)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (spec.bos, spec.eos, spec.pad)
    assert tok.apply_chat_template(CONVERSATION, tokenize=False) == RENDERED[family]
    prompt = tok.apply_chat_template(CONVERSATION[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith(spec.generation_prompt)
    for token in (*spec.additional_special, *spec.other_special, *spec.added, spec.eos):
        assert len(tok(token, add_special_tokens=False)["input_ids"]) == 1, token  # one token each
    assert set(spec.additional_special) <= set(tok.all_special_tokens)
    unlisted = set(spec.other_special) - {spec.bos, spec.eos, spec.pad, spec.unk}
    assert not unlisted & set(tok.all_special_tokens)  # special, but not listed (the real quirk)
    plain = tok("Hi")["input_ids"]
    assert (plain[0] == tok.bos_token_id) is spec.add_bos


def test_the_template_quirks_the_zoo_exists_for(zoo_tokenizer_dir):
    from transformers import AutoTokenizer

    def tok(family):
        return AutoTokenizer.from_pretrained(zoo_tokenizer_dir(family))

    smol = tok("chatml_default_system")
    assert smol.bos_token == "<|im_start|>" and "bos_token" not in smol.chat_template
    two_turns = [*CONVERSATION, {"role": "user", "content": "More"}, {"role": "assistant", "content": "Sure"}]
    qwen3 = tok("chatml_qwen3").apply_chat_template(two_turns, tokenize=False)
    assert "assistant\nHello<|im_end|>" in qwen3 and qwen3.count("<think>") == 1  # only the last turn thinks
    gemma = tok("gemma").apply_chat_template([{"role": "system", "content": "Be brief."}, *CONVERSATION],
                                             tokenize=False)
    assert gemma.startswith("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n")
    mistral = tok("mistral")
    system = [{"role": "system", "content": "Be brief."}]
    # the system message goes into the user turn only when that turn is the last message, else it is dropped
    assert (mistral.apply_chat_template(system + two_turns[:3], tokenize=False)
            == "<s>[INST] Hi[/INST] Hello</s>[INST] Be brief.\n\nMore[/INST]")
    assert mistral.apply_chat_template(system + two_turns, tokenize=False) == RENDERED["mistral"].replace(
        "Hello</s>", "Hello</s>[INST] More[/INST] Sure</s>")


def test_zoo_model_generates_and_stops_on_the_family_end_of_turn(zoo_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = zoo_model_dir("llama3")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids(["<|end_of_text|>", "<|eot_id|>"])
    ids = tok.apply_chat_template(CONVERSATION[:1], add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)["input_ids"]
    out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] <= ids.shape[1] + 3
