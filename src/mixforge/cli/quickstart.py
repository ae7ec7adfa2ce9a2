"""`mixforge quickstart`: the main job on the embedded default, offline.

Until the full "tune without forgetting" run lands, this runs the smallest honest end-to-end path that exists:
build the tiny preset, render a conversation through its chat template, train a few real optimizer steps on
a toy chat set and print the measured losses, then generate.
"""

from __future__ import annotations

from pathlib import Path

import typer


def quickstart(
    output: Path = typer.Option(Path("runs/quickstart"), "--output", help="Folder for everything the run writes."),
    steps: int = typer.Option(30, help="Optimizer steps of the toy fine-tune."),
    seed: int = typer.Option(0, help="Seed of the model and the data order."),
) -> None:
    """Run the main job on the embedded default (offline, minutes on a CPU)."""
    import torch
    from rich.console import Console

    from mixforge.models.registry import load_model, load_tokenizer
    from mixforge.models.tiny import build_tiny, parameter_count

    console = Console()
    torch.manual_seed(seed)
    model_dir = build_tiny("tiny-chat", seed=seed, out_dir=output / "base-model", overwrite=True)
    tokenizer, model = load_tokenizer(str(model_dir)), load_model(str(model_dir))
    console.print(f"[bold]model[/] tiny-chat, {parameter_count(model):,} parameters, at {model_dir}")

    pairs = [("What is the capital of France?", "Paris."), ("What is 2 + 3?", "5."),
             ("Name a primary colour.", "Red."), ("Translate 'cat' to French.", "Chat.")]
    batch = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in pairs]
    console.print("[bold]chat template[/]", repr(tokenizer.apply_chat_template(batch[0], tokenize=False)))
    enc = tokenizer.apply_chat_template(batch, tokenize=True, padding=True, return_dict=True,
                                        return_assistant_tokens_mask=True, return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["assistant_masks"] == 0, -100)  # loss on assistant tokens only
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    console.print(f"[bold]toy fine-tune[/] {steps} steps: assistant-token loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    model.eval()
    prompt = tokenizer.apply_chat_template(batch[0][:1], add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    reply = tokenizer.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    console.print(f"[bold]generate[/] {pairs[0][0]!r} -> {reply!r}")
