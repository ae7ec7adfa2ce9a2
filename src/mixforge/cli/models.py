"""`mixforge models ...`: build tiny presets and show what mixforge reads from any model."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Build tiny models and inspect any model (preset, local directory or hub id).",
                  no_args_is_help=True)


@app.command("presets")
def presets() -> None:
    """List the tiny presets the factory builds."""
    from rich.console import Console
    from rich.table import Table

    from mixforge.models.tiny import PRESETS

    table = Table("preset", "vocab", "hidden", "layers", "heads (kv)", "mlp", "max positions")
    for name, p in PRESETS.items():
        table.add_row(name, str(p.vocab_size), str(p.hidden_size), str(p.num_hidden_layers),
                      f"{p.num_attention_heads} ({p.num_key_value_heads})", str(p.intermediate_size),
                      str(p.max_position_embeddings))
    Console().print(table)


@app.command("build")
def build(
    preset: str = typer.Argument("tiny-chat", help="One of `mixforge models presets`."),
    out: Path = typer.Option(..., "--out", help="Directory to write the Hugging Face model into."),
    seed: int = typer.Option(0, help="Seed of the weight initialization; the same seed gives the same bytes."),
    overwrite: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Build a tiny Llama with its tokenizer and chat template, saved as a Hugging Face directory."""
    from mixforge.models.tiny import build_tiny, parameter_count

    path = build_tiny(preset, seed=seed, out_dir=out, overwrite=overwrite)
    from transformers import AutoModelForCausalLM

    n = parameter_count(AutoModelForCausalLM.from_pretrained(path))
    typer.echo(f"built {preset} (seed {seed}, {n:,} parameters) at {path}")


@app.command("info")
def info(
    model: str = typer.Argument(..., help="A tiny preset, a local directory or a hub id."),
    trust_remote_code: bool = typer.Option(False, help="Run code shipped with the model (off by default)."),
) -> None:
    """Show the chat template, special tokens, role markers, LoRA targets and maximum length of MODEL."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from mixforge.models.registry import model_info

    mi = model_info(model, trust_remote_code=trust_remote_code)
    table = Table("field", "value", show_header=False)
    rows = {
        "path": mi.path,
        "model type": mi.model_type,
        "max sequence length": str(mi.max_seq_len),
        "special tokens": ", ".join(mi.special_tokens),
        "role markers": ", ".join(f"{r}={m!r}" for r, m in mi.role_markers.items()),
        "LoRA target modules": str(mi.lora_target_modules),
        "chat template": mi.chat_template or "(none)",
    }
    for name, value in rows.items():
        table.add_row(name, Text(value))  # Text, not markup: '[/INST]' is a token, not a closing tag
    Console().print(table)
