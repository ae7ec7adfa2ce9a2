"""`mixforge mix ...`: the general-data catalogue, a mixing config's exact arithmetic, and batch tracing."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Data mixing: the catalogue of general data, exact per-step counts, batch tracing.",
                  no_args_is_help=True)


@app.command("catalog")
def catalog(
    general_data: str = typer.Option("auto", help="auto, embedded, hub or none: what fills each category."),
) -> None:
    """List the categories of general data and the sources that fill them."""
    from rich.console import Console
    from rich.markup import escape

    from mixforge.mix.catalog import CATEGORIES, category_sources

    if general_data not in ("auto", "embedded", "hub", "none"):
        raise typer.BadParameter("choose auto, embedded, hub or none", param_hint="--general-data")
    console = Console(soft_wrap=True)
    console.print(f"[bold]general data[/] (general_data={general_data}); key: nova_<category>_percent or "
                  "<category>_percent")
    for category, sources in category_sources(general_data).items():  # type: ignore[arg-type]
        about = CATEGORIES.get(category, "shipped with mixforge")
        console.print(f"\n[bold]{category}[/]  {escape(about)}")
        if not sources:
            console.print("  (no source: add one under `sources`, or use --general-data hub)")
        for src in sources:
            where = _short_path(src.location) if src.kind != "hub" else " ".join(
                p for p in (src.location, src.config and f"config={src.config}", f"split={src.split}") if p)
            if src.where:
                where += " where " + ", ".join(f"{k}={v}" for k, v in src.where.items())
            note = f"  ({src.note})" if src.note else ""
            console.print(f"  {src.name}  [dim]{src.kind}[/]  {escape(where)}  format={src.format}  "
                          f"licence={escape(src.license)}{escape(note)}", highlight=False)


def _short_path(path: str) -> str:
    marker = "mixforge/assets/"
    return path[path.index(marker):] if marker in path else path


@app.command("show")
def show(
    config: Path | None = typer.Argument(None, help="A mixing YAML/JSON (or a run config with a `mixing:` section); default: the defaults."),
    global_batch_size: int = typer.Option(16, "--batch-size", help="Records per optimizer step, over all processes."),
    steps: int = typer.Option(8, help="Optimizer steps to show from the start of each stage."),
) -> None:
    """Show the resolved shares of every source and the exact records each one gets in each step."""
    from rich.console import Console
    from rich.table import Table

    from mixforge.mix.config import DataMixingConfig, default_mixing_config
    from mixforge.mix.weights import SlotAllocator

    cfg = DataMixingConfig.from_yaml(config) if config else default_mixing_config()
    schedule = cfg.source_schedule()
    console = Console()
    console.print(f"customer_data_percent: {cfg.customer_data_percent:g}   general_data: {cfg.general_data}"
                  f"   stages: {len(schedule.starts)}   global batch: {global_batch_size} records")
    # the pieces worth a column: step 0, each stage's start, and the end of each ramp
    marks = {0} | {s.step for s in cfg.schedule} | {s.step + s.ramp_steps - 1 for s in cfg.schedule if s.ramp_steps}
    cols = [k for k, start in enumerate(schedule.starts) if start in marks]
    shares = Table("source", *[f"share from step {schedule.starts[k] + 1}" for k in cols],
                   title=f"resolved shares of every global batch ({len(schedule.starts)} constant pieces; "
                         f"ideal records per step = share x {global_batch_size})")
    for i, name in enumerate(schedule.names):
        cells = []
        for k in cols:
            w = schedule.shares[k][i]
            cells.append(f"{float(w) * 100:.4g}% ({w})" if w else "0")
        shares.add_row(name, *cells)
    console.print(shares)

    alloc = SlotAllocator(schedule, global_batch_size)
    shown = sorted({schedule.starts[k] + j for k in cols for j in range(steps)})
    per_step: dict[int, list[int]] = {}
    taken = [0] * len(schedule.names)
    for step in range(shown[-1] + 1):
        slots = alloc.next_step()
        per = [slots.count(i) for i in range(len(schedule.names))]
        taken = [a + b for a, b in zip(taken, per, strict=True)]
        if step in shown:
            per_step[step] = per
    counts = Table("source \\ step", *[str(s + 1) for s in shown],
                   title="exact records per optimizer step (Tijdeman slot allocation)")
    for i, name in enumerate(schedule.names):
        counts.add_row(name, *[str(per_step[s][i]) for s in shown])
    console.print(counts)
    ideal = schedule.cumulative(shown[-1] + 1)
    worst = max(abs(t - float(c) * global_batch_size) for t, c in zip(taken, ideal, strict=True))
    console.print(f"after step {shown[-1] + 1}: largest |taken - ideal| over sources = {worst:.3f} records (< 1)")


@app.command("trace")
def trace(
    run: Path = typer.Argument(..., help="A run directory holding mix_manifest.json and mix_index.npz."),
    step: int = typer.Option(..., "--step", help="Optimizer step, counted from 1 (the number the trainer logs)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """List the records of optimizer step K with their source, file, row and rank."""
    import json

    from mixforge.mix.trace import trace_step

    rows = trace_step(run, step)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r.to_dict()))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("#", "rank", "source", "index", "file", "row", "tokens", "loss tokens", title=f"step {step}")
    for r in rows:
        table.add_row(str(r.position), str(r.rank), r.source, str(r.index), r.location,
                      "" if r.row is None else str(r.row), "" if r.tokens is None else str(r.tokens),
                      "" if r.loss_tokens is None else str(r.loss_tokens))
    Console().print(table)


# `mixforge mix search`: lives with the search (mixforge.search sits above train and eval)
from mixforge.search.cli import search as _search  # noqa: E402

app.command("search")(_search)
