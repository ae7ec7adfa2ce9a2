"""`mixforge mix search`: the CLI twin of `mixforge.mix_search` (registered by mixforge.cli.mix).

    mixforge mix search --config run.yaml --percent 100 --percent 75 --percent 50 --steps 200 \\
        --general general_mc.jsonl --domain test.jsonl --labels labels.txt --out runs/search --validate
"""

from __future__ import annotations

from pathlib import Path

import typer


def search(
    config: Path = typer.Option(..., "--config", "-c", help="The run config YAML whose mix is searched."),
    percent: list[float] = typer.Option([], "--percent", "-p", help="A customer_data_percent to try "
                                        "(repeatable; default 100, 75, 50, 25, 10)."),
    steps: int | None = typer.Option(None, help="Optimizer steps of each trial (a proxy budget); default: "
                                     "the config's max_steps."),
    general: str = typer.Option(..., help="The general multiple-choice task file (MMLU format): use a dev "
                                "split, not the one you report."),
    domain: str = typer.Option(..., help="The domain classification task file."),
    labels: str | None = typer.Option(None, help="The domain label set (one label a line)."),
    text_field: str | None = typer.Option(None, help="The domain records' prompt field (e.g. feedback), when "
                                          "they are raw records rather than chat messages."),
    shots: int = typer.Option(0, help="Shots for the general task."),
    answer_format: str = typer.Option("letter", help="General task: score the choice letters (letter) or the "
                                      "choices' text (text)."),
    prompt_style: str = typer.Option("mmlu", help="General task: mmlu (lettered options) or question (the bare "
                                     "question, cloze style; needs --answer-format text)."),
    general_metric: str | None = typer.Option(None, help="acc (default) or acc_norm (length-normalized)."),
    domain_metric: str | None = typer.Option(None, help="macro_f1 (default), accuracy or weighted_f1."),
    limit: int | None = typer.Option(None, help="Evaluate only the first N records of each task."),
    target_retention: float = typer.Option(0.95, help="Retention (general / base general) the recommendation "
                                           "must keep at its 95% interval's lower bound."),
    out: Path = typer.Option(Path("runs/mix-search"), "--out", help="Folder for search.json, search.html, the "
                             "trials and the recommended config."),
    validate: bool = typer.Option(False, "--validate", help="Train the recommendation again at the config's "
                                  "full budget and report it."),
    weights_trials: int = typer.Option(0, help="Also search category weights (Optuna, extra: search): this "
                                       "many trials, the default weights first."),
    weights_percent: float | None = typer.Option(None, help="customer_data_percent of the weight trials "
                                                 "(default: the sweep's recommendation)."),
    max_parallel: int | None = typer.Option(None, help="Trials training at once on a cluster runtime (default: "
                                            "all; local runtimes one at a time)."),
    n_resamples: int = typer.Option(1000, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, help="Seed of the bootstrap, the shots and the weight search."),
    batch_size: int = typer.Option(16, help="Prompts per forward pass in evaluation."),
    tracking_uri: str | None = typer.Option(None, help="MLflow store (default: the config's, else "
                                            "sqlite:///OUT/mlflow.db)."),
) -> None:
    """Find the share of your data that keeps general skill: train each mix briefly, evaluate, recommend."""
    from mixforge.search.mix_search import mix_search

    mix_search(config, percents=percent or (100, 75, 50, 25, 10), steps=steps, general=general, domain=domain,
               labels=labels, text_field=text_field, shots=shots, answer_format=answer_format,
               prompt_style=prompt_style, general_metric=general_metric, domain_metric=domain_metric, limit=limit,
               target_retention=target_retention, out=out, validate=validate, weights_trials=weights_trials,
               weights_percent=weights_percent, max_parallel=max_parallel, n_resamples=n_resamples, seed=seed,
               batch_size=batch_size, tracking_uri=tracking_uri)
