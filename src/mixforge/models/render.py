"""Render conversations through a model's own chat template, and check how two renders relate.

Both the role-marker reader (`registry.role_markers`) and the SFT label builder (`train.tokenize`) find where a
turn sits in a rendered conversation by rendering a shorter conversation and checking that it is where the longer
one starts. Templates differ in one harmless way, handled here once: some end every render that has no generation
prompt with the EOS token (Phi-3: `... <|end|>\\n<|endoftext|>`), which a longer conversation does not repeat.
"""

from __future__ import annotations


def render(tokenizer, messages: list[dict], *, add_generation_prompt: bool = False) -> str:
    """The conversation as the template writes it (text, not tokens)."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def try_render(tokenizer, messages: list[dict], *, add_generation_prompt: bool = False) -> str | None:
    """`render`, or None where the template refuses the conversation (a role it has no place for, turns that do
    not alternate): templates raise arbitrary exceptions through `raise_exception`."""
    try:
        return render(tokenizer, messages, add_generation_prompt=add_generation_prompt)
    except Exception:  # noqa: BLE001 - jinja's TemplateError and whatever a template's own code raises
        return None


def prefix_end(prefix: str, full: str, *, eos: str | None) -> int | None:
    """Where `prefix` stops inside `full` when `full` continues it: len(prefix), or len(prefix) less a final EOS
    that the template writes at the end of every render (Phi-3). None when `full` does not start with `prefix`,
    i.e. the template rewrote text it had already written (Qwen3's <think> blocks, Mistral's system message)."""
    if full.startswith(prefix):
        return len(prefix)
    if eos and prefix.endswith(eos) and full.startswith(prefix[: -len(eos)]):
        return len(prefix) - len(eos)
    return None
