"""`mixforge quickstart`: the main job on the embedded default, offline (see mixforge.quickstart)."""

from __future__ import annotations

from pathlib import Path

import typer


def quickstart(
    output: Path = typer.Option(Path("runs/quickstart"), "--output", help="Folder for everything the run writes."),
    method: str = typer.Option("sft_full", help="sft_full or sft_lora."),
    percent: list[float] = typer.Option([100.0, 50.0], "--percent",
                                        help="customer_data_percent of each fine-tune (repeatable); 100 = domain only."),
    steps: int = typer.Option(800, help="Optimizer steps of each fine-tune (the same budget for every run)."),
    seed: int = typer.Option(0, help="Seed of data split, mixer and training."),
    batch_size: int = typer.Option(32, help="Records per optimizer step."),
    eval_limit: int | None = typer.Option(None, help="Evaluate only the first N questions of each benchmark (faster, noisier)."),
) -> None:
    """Show "tune without forgetting" end to end: prepare data, evaluate the base, fine-tune domain-only and
    mixed with the same budget, evaluate both, and write the forgetting report."""
    from mixforge.quickstart import quickstart as run_quickstart

    run_quickstart(output=output, method=method, percents=percent, steps=steps, seed=seed, batch_size=batch_size,
                   eval_limit=eval_limit)
