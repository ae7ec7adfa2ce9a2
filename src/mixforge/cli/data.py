"""`mixforge data ...`: prepare, show, validate, filter and split datasets (thin over `mixforge.data`)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Prepare training data: load, map, sanitize, validate, filter, split and save.",
                  no_args_is_help=True)

_MAP_HELP = ("Column mapping FIELD=COLUMN,... e.g. question=q,answer=a | instruction=..,input=..,output=.. | "
             "messages=.. | conversations=.. | prompt=..,chosen=..,rejected=.. | text=.. (+ label=.., id=..). "
             "Dotted paths reach nested fields. Left out: guessed from the columns.")
_METHOD_HELP = "Training method: sft_lora, sft_full, cpt, dpo_lora or dpo_full."
_MODEL_HELP = "Model whose chat template and tokenizer are checked against (tiny preset, directory or hub id)."


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _print_report(report, *, stages: bool) -> None:
    from rich.console import Console

    console = Console()
    console.print(report.table())
    if stages:
        console.print(report.stage_table())


@app.command("prepare")
def prepare_cmd(
    inputs: list[str] = typer.Argument(..., help="Input files or globs (JSONL, JSON, CSV/TSV, Parquet, Arrow, a "
                                       "saved dataset directory, a hub id), any fsspec path."),
    out: str = typer.Option(..., "--out", "-o", help="Output directory (any fsspec path)."),
    map_: str | None = typer.Option(None, "--map", help=_MAP_HELP),
    method: str = typer.Option("sft_lora", help=_METHOD_HELP),
    model: str | None = typer.Option(None, help=_MODEL_HELP),
    max_seq_len: int | None = typer.Option(None, help="Token limit per row; default the model's."),
    too_long: str = typer.Option("warn", help="Rows over --max-seq-len: 'warn' (keep, count) or 'reject'."),
    sanitize: bool = typer.Option(True, help="Escape/strip reserved strings ('System:' -> 'System :')."),
    reserved_action: str = typer.Option("strip", help="Action for the model's special tokens: escape, strip, reject."),
    marker_action: str = typer.Option("escape", help="Action for 'System:'-style markers: escape, strip, reject."),
    quality: bool = typer.Option(True, help="Drop rows failing the default quality limits."),
    lang: str | None = typer.Option(None, help="Keep only these languages, e.g. 'en' or 'en,de' (langdetect)."),
    dedup: str = typer.Option("exact", help="Duplicate removal: none, exact or fuzzy (MinHash LSH)."),
    fuzzy_threshold: float = typer.Option(0.8, help="Jaccard similarity above which rows are near-duplicates."),
    labels: str | None = typer.Option(None, help="The declared label set, comma-separated (classification)."),
    split: str | None = typer.Option(None, help="Train,validation[,test] ratios, e.g. 0.9,0.05,0.05."),
    seed: int = typer.Option(0, help="Seed of the split."),
    stratify: bool = typer.Option(True, help="Stratify the split by label (when a label column is mapped)."),
    format: str = typer.Option("jsonl", help="Output format: jsonl, parquet or bedrock (JSONL)."),
    strict: bool = typer.Option(False, help="Fail instead of writing when any row is rejected."),
    min_rows: int | None = typer.Option(None, help="Minimum rows to keep (default: 8 for SFT/DPO, 1 for CPT)."),
    max_rows: int | None = typer.Option(None, help="Maximum rows to keep."),
    input_format: str | None = typer.Option(None, help="Force the input format (jsonl, json, csv, tsv, parquet, "
                                            "arrow, hf_disk, hub)."),
    json_key: str | None = typer.Option(None, help="JSON input: the key holding the list of records."),
    input_split: str = typer.Option("train", help="Saved dataset directory or hub id: the split to read."),
    stages: bool = typer.Option(False, help="Also print time, rows/s and peak memory per stage."),
) -> None:
    """Sanitize, transform, validate, filter, split and save INPUTS in one streaming pass."""
    from mixforge.data.pipeline import prepare

    report = prepare(
        inputs, mapping=map_, method=method, model=model, out_dir=out, max_seq_len=max_seq_len,
        too_long=too_long, sanitize_text=sanitize, reserved_action=reserved_action,  # type: ignore[arg-type]
        marker_action=marker_action, quality=quality, languages=_csv(lang),  # type: ignore[arg-type]
        dedup=dedup, fuzzy_threshold=fuzzy_threshold, labels=_csv(labels), split=split, seed=seed,
        stratify=stratify, format=format, strict=strict, min_rows=min_rows, max_rows=max_rows,  # type: ignore[arg-type]
        input_format=input_format, json_key=json_key, input_split=input_split, progress=True,  # type: ignore[arg-type]
    )
    _print_report(report, stages=stages)


@app.command("show")
def show_cmd(
    input: str = typer.Argument(..., help="Input file (any format `data prepare` reads)."),
    n: int = typer.Option(5, "-n", help="Rows to show."),
    map_: str | None = typer.Option(None, "--map", help=_MAP_HELP),
    method: str | None = typer.Option(None, help="Show the rows as this method's canonical records."),
    model: str | None = typer.Option(None, help="With --method: sanitize against this model's template."),
    input_format: str | None = typer.Option(None, help="Force the input format."),
    json_key: str | None = typer.Option(None, help="JSON input: the key holding the list of records."),
) -> None:
    """Print the first N rows as a table: raw, or (with --method) as canonical records."""
    from mixforge.facade.loaders import DatasetLoader

    columns = {}
    if map_:
        from mixforge.data.mapping import parse_mapping

        columns = parse_mapping(map_).columns()  # type: ignore[union-attr]
    loader = DatasetLoader(json_key=json_key, **columns)
    loader.format = input_format  # type: ignore[assignment]
    loader.load(input)
    if method:
        if model:
            loader.sanitize(model=model)
        loader.transform(method=method, model=model)
    loader.show(n=n)


@app.command("validate")
def validate_cmd(
    input: str = typer.Argument(..., help="Input file: raw data with --map, or a prepared file."),
    map_: str | None = typer.Option(None, "--map", help=_MAP_HELP),
    method: str = typer.Option("sft_lora", help=_METHOD_HELP),
    model: str | None = typer.Option(None, help=_MODEL_HELP),
    max_seq_len: int | None = typer.Option(None, help="Token limit per row; default the model's."),
    labels: str | None = typer.Option(None, help="The declared label set, comma-separated."),
    min_rows: int | None = typer.Option(None, help="Minimum rows (default: 8 for SFT/DPO, 1 for CPT)."),
    max_rows: int | None = typer.Option(None, help="Maximum rows."),
    strict: bool = typer.Option(False, help="Exit 1 when any rule fails."),
    input_format: str | None = typer.Option(None, help="Force the input format."),
    json_key: str | None = typer.Option(None, help="JSON input: the key holding the list of records."),
) -> None:
    """Check INPUT as it is (nothing is changed or written): counts per rule with the first examples."""
    from rich.console import Console

    from mixforge.data.pipeline import validate_input

    report, _ = validate_input(input, mapping=map_, method=method, model=model, max_seq_len=max_seq_len,
                               labels=_csv(labels), min_rows=min_rows, max_rows=max_rows, strict=strict,
                               input_format=input_format, json_key=json_key)  # type: ignore[arg-type]
    console = Console()
    console.print(report.summary(), highlight=False, markup=False)
    console.print("[green]valid[/]" if report.ok else "[yellow]problems found[/] (run with --strict to fail)")


@app.command("filter")
def filter_cmd(
    input: str = typer.Argument(..., help="Input file (raw with --map, or prepared)."),
    out: str = typer.Option(..., "--out", "-o", help="Output directory."),
    map_: str | None = typer.Option(None, "--map", help=_MAP_HELP),
    method: str = typer.Option("sft_lora", help=_METHOD_HELP),
    dedup: str = typer.Option("exact", help="none, exact or fuzzy."),
    fuzzy_threshold: float = typer.Option(0.8, help="Jaccard similarity above which rows are near-duplicates."),
    lang: str | None = typer.Option(None, help="Keep only these languages, e.g. 'en'."),
    quality: bool = typer.Option(True, help="Apply the default quality limits."),
    format: str = typer.Option("jsonl", help="Output format: jsonl, parquet or bedrock."),
) -> None:
    """Filter INPUT (dedup, language, quality) without sanitizing; dropped rows go to rejects.jsonl."""
    from mixforge.data.pipeline import prepare

    report = prepare(input, mapping=map_, method=method, out_dir=out, sanitize_text=False, quality=quality,
                     languages=_csv(lang), dedup=dedup, fuzzy_threshold=fuzzy_threshold, min_rows=1,
                     format=format)  # type: ignore[arg-type]
    _print_report(report, stages=False)


@app.command("split")
def split_cmd(
    input: str = typer.Argument(..., help="Input file (raw with --map, or prepared)."),
    out: str = typer.Option(..., "--out", "-o", help="Output directory."),
    ratios: str = typer.Option("0.9,0.05,0.05", help="Train,validation[,test] ratios."),
    seed: int = typer.Option(0, help="Seed of the split."),
    stratify: bool = typer.Option(True, help="Stratify by label when a label column is mapped."),
    near_duplicates: bool = typer.Option(True, help="Keep near-duplicates on one side (MinHash LSH groups)."),
    map_: str | None = typer.Option(None, "--map", help=_MAP_HELP),
    method: str = typer.Option("sft_lora", help=_METHOD_HELP),
    format: str = typer.Option("jsonl", help="Output format: jsonl, parquet or bedrock."),
) -> None:
    """Split INPUT into train/validation/test files (seeded, stratified, no near-duplicate leakage)."""
    from mixforge.data.pipeline import prepare

    report = prepare(input, mapping=map_, method=method, out_dir=out, sanitize_text=False, quality=False,
                     dedup="none", split=ratios, seed=seed, stratify=stratify, split_near_duplicates=near_duplicates,
                     min_rows=1, format=format)  # type: ignore[arg-type]
    _print_report(report, stages=False)


@app.command("stores")
def stores_cmd(
    keep: int | None = typer.Option(None, min=0, help="Delete every token store but the KEEP most recently used."),
    root: str | None = typer.Option(None, help="Folder of the stores (default: $MIXFORGE_HOME/tokens)."),
) -> None:
    """List the tokenized-data stores training built (most recently used first); --keep N deletes the rest.
    A deleted store is built again by the next run that needs it."""
    import time

    from rich.console import Console
    from rich.table import Table

    from mixforge.train.store import default_root, list_stores, remove_stores

    console = Console()
    removed = remove_stores(root, keep=keep) if keep is not None else []
    table = Table("store", "kind", "records", "MiB", "last used", title=f"token stores in {root or default_root()}")
    for s in list_stores(root):
        table.add_row(s["path"].name, s["kind"], f"{s['records']:,}", f"{s['mib']:,.1f}",
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(s["last_used"])))
    console.print(table)
    if keep is not None:
        console.print(f"removed {len(removed)} store(s)", highlight=False)
