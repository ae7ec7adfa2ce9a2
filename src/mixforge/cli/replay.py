"""`mixforge replay generate`: the model writes its own replay data (magpie, prompts or free)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Self-generated replay data: the model writes the general data mixed into its fine-tune.",
                  no_args_is_help=True)


@app.command("generate")
def generate(
    model: str = typer.Option(..., "--model", "-m", help="A hub id, a model directory or a tiny preset: the model "
                              "you are about to fine-tune."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for <category>.jsonl and manifest.json (an "
                             "interrupted generation there resumes; a finished one with the same settings is reused)."),
    n: int = typer.Option(..., "--n", help="Records to keep (split over the categories)."),
    mode: str = typer.Option("prompts", help="magpie (a chat model writes instructions and answers them), prompts "
                             "(it answers given prompts) or free (samples from BOS: text records)."),
    prompts: str | None = typer.Option(None, help="Prompts mode: a file (JSONL, JSON, CSV, Parquet) or hub "
                                       "dataset id of prompts; answers in it are ignored."),
    mapping: str | None = typer.Option(None, "--map", help="Columns of --prompts: prompt=COL (or question=, "
                                       "instruction=, messages=, conversations=, system=, category=)."),
    categories: str | None = typer.Option(None, help="Comma-separated categories (n split equally), or "
                                          "cat=weight,...; without --prompts, prompts mode answers the bundled "
                                          "categories' prompts."),
    max_new_tokens: int = typer.Option(256, help="Tokens per generation at most; an answer without an "
                                       "end-of-turn by then is dropped as truncated."),
    temperature: float = typer.Option(0.7, help="Sampling temperature; 0 is greedy."),
    top_p: float = typer.Option(0.95, help="Nucleus sampling mass (with temperature > 0)."),
    seed: int = typer.Option(0, help="Seeds the prompt order and the sampling."),
    batch_size: int = typer.Option(32, help="Prompts per generate call; higher is faster and takes more memory."),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
    backend: str = typer.Option("auto", help="auto (vLLM when installed with CUDA, else transformers), "
                                "transformers or vllm."),
    adapter: str | None = typer.Option(None, help="A peft adapter directory to apply on MODEL."),
    languages: str | None = typer.Option(None, help="Keep only these languages (comma-separated ISO codes, "
                                         "langdetect)."),
    drop_refusals: bool = typer.Option(False, "--drop-refusals", help="Drop answers that open like a refusal."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a generation with other settings in --out."),
) -> None:
    """Generate replay records with MODEL itself, filtered (truncated, empty, duplicates, repetition, template
    markers ...), written in shards with a manifest."""
    from rich.console import Console

    from mixforge.errors import ConfigError
    from mixforge.replay.backends import VLLM_MISSING, vllm_available
    from mixforge.replay.filters import ReplayFilters
    from mixforge.replay.generate import generate_replay

    if backend == "vllm" and not vllm_available():
        raise ConfigError(VLLM_MISSING)  # one red line, not the ImportError's traceback
    cats: list[str] | dict[str, float] | None = None
    if categories:
        parts = [p.strip() for p in categories.split(",") if p.strip()]
        if all("=" in p for p in parts):
            try:
                cats = {k.strip(): float(v) for k, _, v in (p.partition("=") for p in parts)}
            except ValueError:
                raise ConfigError(f"--categories: {categories!r} is not cat=weight,...") from None
        elif any("=" in p for p in parts):
            raise ConfigError("--categories: give names only, or cat=weight for every category")
        else:
            cats = parts
    columns = None
    if mapping:  # FIELD=COLUMN,... as in `data prepare --map`; the fields are checked by generate_replay
        pairs = [p.strip().partition("=") for p in mapping.split(",") if p.strip()]
        if any(not sep or not k.strip() or not v.strip() for k, sep, v in pairs):
            raise ConfigError(f"--map: {mapping!r} is not FIELD=COLUMN,... (e.g. prompt=question)")
        columns = {k.strip(): v.strip() for k, _, v in pairs}
    filters = ReplayFilters(languages=tuple(x.strip() for x in (languages or "").split(",") if x.strip()),
                            drop_refusals=drop_refusals)
    result = generate_replay(model, out_dir=out, n=n, mode=mode, prompts=prompts, mapping=columns,  # type: ignore[arg-type]
                             categories=cats, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                             seed=seed, batch_size=batch_size, device=device, backend=backend,  # type: ignore[arg-type]
                             adapter=adapter, filters=filters, overwrite=overwrite)
    console = Console(soft_wrap=True)
    if result.reused:
        console.print(f"reused the finished generation in {result.out_dir} (cache key {result.cache_key})")
    dropped = ", ".join(f"{r} {k}" for r, k in result.dropped.items()) or "none"
    console.print(f"kept {result.kept} of {result.attempted} attempts (dropped: {dropped}); "
                  f"{result.tokens_per_s:,.0f} generated tokens/s", highlight=False)
    for category, path in result.files.items():
        stats = result.per_category.get(category, {})
        console.print(f"  {category}: {stats.get('kept', '?')} of {stats.get('quota', '?')} -> {path}", highlight=False)
    console.print(f"manifest: {result.manifest}", highlight=False)
