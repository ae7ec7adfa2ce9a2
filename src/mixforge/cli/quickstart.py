"""`mixforge quickstart`: the main job on the embedded default, offline (see mixforge.quickstart)."""

from __future__ import annotations

from pathlib import Path

import typer

from mixforge.quickstart import DEFAULT_ARMS, DEFAULT_STEPS  # stdlib-only imports: the CLI stays light


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def quickstart(
    output: Path = typer.Option(Path("runs/quickstart"), "--output", help="Folder for everything the run writes."),
    method: str = typer.Option("sft_full", help="sft_full or sft_lora."),
    arm: list[str] = typer.Option(list(DEFAULT_ARMS), "--arm",
                                  help="Arms to fine-tune (repeatable): domain-only (customer 100), curated-kl-all "
                                       "(customer 50 + the bundled replay pool, replay_loss kl on every position), "
                                       "self-kl-all (customer 50 + replay the base model writes itself, the same "
                                       "loss); also curated-kl / self-kl (KL on the answer tokens only), and "
                                       "curated / self with replay_loss nll."),
    steps: int = typer.Option(DEFAULT_STEPS, help="Optimizer steps of each fine-tune (the same budget for every arm)."),
    seeds: str = typer.Option("0", help="Training seeds, comma-separated (0,1,2): every arm runs once per seed; "
                                        "with several, the table shows mean and min-max."),
    split: str = typer.Option("test", help="Half of the general benchmark to evaluate: dev (choose settings on "
                                           "it) or test (report it)."),
    batch_size: int = typer.Option(32, help="Records per optimizer step."),
    learning_rate: float | None = typer.Option(None, help="Peak learning rate (default 1e-3 full, 2e-3 LoRA)."),
    eval_limit: int | None = typer.Option(None, help="Evaluate only the first N questions of each benchmark (faster, noisier)."),
    workers: int | None = typer.Option(None, help="Fine-tunes at once, one process each (default: as many as the "
                                                  "cores allow, e.g. 3 on 2 cores; 1: one after another)."),
) -> None:
    """Show "tune without forgetting" end to end: prepare data, evaluate the base, fine-tune each arm with the
    same budget (domain only; with curated replay; with self-generated replay), evaluate them, and write the
    forgetting report."""
    from mixforge.quickstart import quickstart as run_quickstart

    if split not in ("dev", "test"):
        raise typer.BadParameter(f"--split must be dev or test, got {split!r}")
    run_quickstart(output=output, method=method, arms=arm, steps=steps, seeds=_ints(seeds), split=split,
                   batch_size=batch_size, learning_rate=learning_rate, eval_limit=eval_limit,
                   workers=workers)
