"""Magpie on every chat-template family of the zoo: the pre-query template ends where the user's text begins,
the instruction stops at the family's own end-of-turn token, and the records written are complete
user/assistant turns with no template marker inside. The zoo models are random, so each is first taught its
template (a few hundred steps of next-token loss on rendered chats, all tokens) to write turns that end."""

from __future__ import annotations

import pytest
import torch
from replay_helpers import read_jsonl
from zoo import ZOO_FAMILIES

from mixforge.replay.generate import generate_replay, pre_query_ids, turn_end

END_OF_TURN = {"chatml_default_system": "<|im_end|>", "chatml_qwen3": "<|im_end|>", "llama3": "<|eot_id|>",
               "gemma": "<end_of_turn>", "mistral": "[/INST]", "phi3": "<|end|>"}


@pytest.mark.parametrize("family", ZOO_FAMILIES)
def test_pre_query_template_and_turn_end(zoo_tokenizer_dir, family):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(zoo_tokenizer_dir(family))
    pre = tok.decode(pre_query_ids(tok), skip_special_tokens=False)
    full = tok.apply_chat_template([{"role": "user", "content": "Hello there"}], tokenize=False)
    assert full.startswith(pre) and full[len(pre):].startswith("Hello there")
    ids, strings = turn_end(tok, "user")
    assert not strings and tok.convert_ids_to_tokens(ids) == [END_OF_TURN[family]]


def _teach_template(model_dir: str, steps: int = 300) -> None:
    """Train the random zoo model on its own rendered chats (every token), so it writes turns that end."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mixforge.mix.catalog import embedded_sources, read_source

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    records = [r for _, r in zip(range(256), read_source(embedded_sources()["math"]), strict=False)]
    rows = [tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"] for r in records]
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    width = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    labels = ids.masked_fill(mask == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        pick = torch.randint(0, len(rows), (32,), generator=gen)
        loss = model(input_ids=ids[pick], attention_mask=mask[pick], labels=labels[pick]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(model_dir)


@pytest.mark.slow
@pytest.mark.parametrize("family", ZOO_FAMILIES)
def test_magpie_writes_complete_records_without_markers(zoo_model_dir, tmp_path, family):
    import shutil

    from mixforge.models.registry import model_info

    model = tmp_path / "model"
    shutil.copytree(zoo_model_dir(family), model)
    _teach_template(str(model))
    result = generate_replay(str(model), out_dir=tmp_path / "r", n=6, mode="magpie", temperature=0.7,
                             max_new_tokens=48, batch_size=8, max_attempts=48, show_progress=False)
    assert result.kept + sum(result.dropped.values()) == result.attempted
    records = read_jsonl(result.files["general"])
    assert records, f"{family}: nothing kept ({result.dropped})"
    markers = model_info(str(model)).reserved_strings
    for r in records:
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
        for m in r["messages"]:
            assert m["content"].strip() and not any(k in m["content"] for k in markers), (family, m)
