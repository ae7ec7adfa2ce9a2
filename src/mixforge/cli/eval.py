"""`mixforge eval`, `mixforge report`, `mixforge generate`, `mixforge chat`: evaluate and try checkpoints.

    mixforge eval --model runs/medical/final --task mc:general=mmlu_like.jsonl \\
        --task cls:domain=voc_test.jsonl --labels domain=labels.txt --out results.json
    mixforge report tiny-chat runs/medical/final --general mmlu_like.jsonl --domain voc_test.jsonl \\
        --labels labels.txt --out reports/medical
    mixforge generate --model runs/medical/final --input prompts.jsonl --output out.jsonl
    mixforge chat --model runs/medical/final
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mixforge.errors import ConfigError

KINDS = {"mc": "multiple_choice", "multiple_choice": "multiple_choice", "cls": "classification",
         "classification": "classification", "qa": "generative", "generative": "generative"}
MMLU_HEADER_HELP = ("Multiple-choice header: mixforge (default) or harness, lm-evaluation-harness's MMLU prompt "
                    "('The following are multiple choice questions (with answers) about {subject}.', question "
                    "stripped) to compare with published MMLU numbers.")


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{option}: expected NAME=VALUE, got {v!r}")
        out[name] = value
    return out


def parse_task_specs(specs: list[str], *, labels: dict[str, str], shots: int, seed: int, limit: int | None,
                     chat: bool | None, text_fields: dict[str, str] | None = None, mmlu_header: str = "mixforge"):
    """`KIND:NAME=PATH` strings (KIND: mc, cls or qa) -> EvalTasks."""
    from mixforge.eval.tasks import EvalTask

    tasks = []
    for spec in specs:
        kind, sep, rest = spec.partition(":")
        name, sep2, path = rest.partition("=")
        if not sep or not sep2 or kind not in KINDS or not name or not path:
            raise ConfigError(f"--task: expected KIND:NAME=PATH with KIND one of mc, cls, qa; got {spec!r}")
        kind = KINDS[kind]
        common = {"limit": limit, "chat": chat}
        if kind == "multiple_choice":
            tasks.append(EvalTask.multiple_choice(name, path=path, shots=shots, seed=seed, header=mmlu_header, **common))
        elif kind == "classification":
            tasks.append(EvalTask.classification(name, path=path, labels=labels.get(name),
                                                 text_field=(text_fields or {}).get(name), **common))
        else:
            tasks.append(EvalTask.generative(name, path=path, text_field=(text_fields or {}).get(name), **common))
    unknown = set(labels) - {t.name for t in tasks if t.kind == "classification"}
    if unknown:
        raise ConfigError(f"--labels: no classification task named {', '.join(sorted(unknown))}")
    return tasks


def _print_result(result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("task", "kind", "n", "metric", "value", "cached", title=f"{result.model}")
    for name, r in result.tasks.items():
        for metric, value in r.metrics.items():
            table.add_row(name, r.kind, str(len(r.examples)), metric, f"{value:.4f}", "yes" if r.cached else "")
    Console().print(table)


def eval_command(
    model: str = typer.Option(..., "--model", "-m", help="A hub id, a model directory, an adapter directory "
                              "or a tiny preset."),
    adapter: str | None = typer.Option(None, help="A peft adapter directory to apply on MODEL."),
    task: list[str] = typer.Option([], "--task", "-t", help="KIND:NAME=PATH, KIND one of mc (multiple "
                                   "choice), cls (classification), qa (generative QA); repeatable."),
    labels: list[str] = typer.Option([], help="NAME=FILE: the label set of classification task NAME."),
    text_field: list[str] = typer.Option([], help="NAME=FIELD: task NAME reads its prompt from string field "
                                         "FIELD of raw records (e.g. domain=feedback)."),
    shots: int = typer.Option(0, help="Shots for multiple-choice tasks."),
    seed: int = typer.Option(0, help="Seed of the shot selection."),
    mmlu_header: str = typer.Option("mixforge", help=MMLU_HEADER_HELP),
    limit: int | None = typer.Option(None, help="Evaluate only the first N records of each task."),
    chat: bool | None = typer.Option(None, "--chat/--no-chat", help="Use the chat template (default: when "
                                     "the tokenizer has one)."),
    batch_size: int = typer.Option(16, help="Prompts per forward pass."),
    out: Path | None = typer.Option(None, help="Write the results (all metrics and per-example records) here."),
    cache_dir: Path | None = typer.Option(None, help="Result cache (default $MIXFORGE_HOME/eval_cache)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Re-evaluate even if a cached result exists."),
    lm_eval_task: list[str] = typer.Option([], "--lm-eval", help="An lm-evaluation-harness task to run too "
                                           "(needs the lm-eval extra); repeatable."),
    include_path: Path | None = typer.Option(None, help="A folder of your own lm-eval task YAMLs."),
    harness_tasks: bool = typer.Option(True, "--harness-tasks/--no-harness-tasks", help="Index lm-eval's "
                                       "bundled tasks (seconds); --no-harness-tasks when only --include-path "
                                       "tasks run."),
) -> None:
    """Evaluate a checkpoint on multiple-choice, classification and QA tasks (and lm-eval tasks)."""
    from mixforge.eval.evaluator import evaluate

    if not task and not lm_eval_task:
        raise ConfigError("give at least one --task KIND:NAME=PATH or --lm-eval TASK",
                          hint="mixforge eval --model tiny-chat --task mc:general=mmlu_like.jsonl")
    tasks = parse_task_specs(task, labels=_pairs(labels, "--labels"), shots=shots, seed=seed, limit=limit,
                             chat=chat, text_fields=_pairs(text_field, "--text-field"), mmlu_header=mmlu_header)
    if tasks:
        result = evaluate(model, tasks, adapter=adapter, batch_size=batch_size, cache_dir=cache_dir,
                          use_cache=not no_cache)
        _print_result(result)
        if out:
            typer.echo(f"results: {result.save(out)}")
    if lm_eval_task:
        from mixforge.eval.lm_eval_adapter import run_lm_eval

        harness = run_lm_eval(model, lm_eval_task, adapter=adapter, include_path=include_path,
                              include_defaults=harness_tasks, limit=limit, batch_size=batch_size)
        for name, metrics in harness["results"].items():
            shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
            typer.echo(f"lm-eval {name}: {shown}")


def _run_name(spec: str) -> tuple[str, str]:
    """NAME=PATH, or a path whose name (its parent's, for final/checkpoint folders) becomes the name."""
    name, sep, path = spec.partition("=")
    if sep and name and path:
        return name, path
    p = Path(spec.rstrip("/"))
    if p.name in {"final", "merged", "adapter"}:
        return p.parent.name or spec, spec
    if p.name.startswith(("checkpoint", "step")):  # runs/NAME/checkpoints/step-000040 -> NAME@step-000040
        run = p.parent.parent if p.parent.name in {"checkpoints", "ckpt"} else p.parent
        return f"{run.name}@{p.name}" if run.name else spec, spec
    return (p.stem if p.suffix == ".json" else p.name) or spec, spec


def report_command(
    base: str = typer.Argument(..., help="The base model (checkpoint, tiny preset, hub id or a results .json); "
                               "NAME=PATH names it."),
    runs: list[str] = typer.Argument(..., help="Tuned checkpoints (or results .json files); NAME=PATH names one."),
    general: str | None = typer.Option(None, help="The general multiple-choice task file (MMLU format)."),
    domain: str | None = typer.Option(None, help="The domain classification task file."),
    labels: str | None = typer.Option(None, help="The domain label set (one label a line)."),
    text_field: str | None = typer.Option(None, help="The domain records' prompt field (e.g. feedback), when "
                                          "they are raw records rather than chat messages."),
    shots: int = typer.Option(0, help="Shots for the general task."),
    answer_format: str = typer.Option("letter", help="General task: score the choice letters (letter) or the "
                                      "choices' text (text)."),
    mmlu_header: str = typer.Option("mixforge", help=MMLU_HEADER_HELP),
    general_metric: str | None = typer.Option(None, help="acc (default) or acc_norm (length-normalized)."),
    domain_metric: str | None = typer.Option(None, help="macro_f1 (default), accuracy or weighted_f1."),
    limit: int | None = typer.Option(None, help="Evaluate only the first N records of each task."),
    out: Path = typer.Option(..., "--out", help="Folder for report.md, report.html, report.json and plots/."),
    run_dir: list[str] = typer.Option([], help="NAME=DIR: where run NAME's metrics.jsonl and "
                                      "mixture_manifest.json are (default: found near the checkpoint)."),
    n_resamples: int = typer.Option(1000, help="Bootstrap resamples for the 95% intervals."),
    batch_size: int = typer.Option(16, help="Prompts per forward pass."),
    tracking_uri: str | None = typer.Option(None, help="Log the report to this MLflow tracking URI."),
    mlflow_run_id: str | None = typer.Option(None, help="Log into this existing MLflow run."),
) -> None:
    """Compare a base model with tuned runs: domain gain and general retention, with intervals and plots."""
    from mixforge.eval.evaluator import evaluate
    from mixforge.eval.report import forgetting_report
    from mixforge.eval.tasks import EvalResult, EvalTask

    named = [_run_name(base), *[_run_name(r) for r in runs]]
    if len({n for n, _ in named}) != len(named):
        raise ConfigError(f"runs: names must be unique, got {[n for n, _ in named]}", hint="name them: NAME=PATH")
    needs_eval = any(not p.endswith(".json") for _, p in named)
    if needs_eval and not (general and domain):
        raise ConfigError("--general and --domain are required unless every input is a results .json file")
    tasks = [EvalTask.multiple_choice("general", path=general, shots=shots, answer_format=answer_format, limit=limit,
                                      header=mmlu_header),
             EvalTask.classification("domain", path=domain, labels=labels, text_field=text_field, limit=limit),
             ] if needs_eval else []
    results = {name: EvalResult.load(p) if p.endswith(".json") else evaluate(p, tasks, batch_size=batch_size)
               for name, p in named}
    report = forgetting_report(results, base=named[0][0], out_dir=out, run_dirs=_pairs(run_dir, "--run-dir"),
                               general_metric=general_metric, domain_metric=domain_metric, n_resamples=n_resamples,
                               tracking_uri=tracking_uri, mlflow_run_id=mlflow_run_id)
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(report.table()))
    typer.echo(f"report: {report.html} and {report.markdown}")
    if report.mlflow_run_id:
        typer.echo(f"logged to MLflow run {report.mlflow_run_id}")


def generate_command(
    model: str = typer.Option(..., "--model", "-m", help="A hub id, a model directory, an adapter directory "
                              "or a tiny preset."),
    input_path: Path = typer.Option(..., "--input", "-i", help="JSONL of {\"messages\"}, {\"prompt\"} or "
                                    "{\"text\"} records."),
    output_path: Path = typer.Option(..., "--output", "-o", help="JSONL to write {id, messages, output} to."),
    adapter: str | None = typer.Option(None, help="A peft adapter directory to apply on MODEL."),
    max_new_tokens: int = typer.Option(128, help="Tokens to generate at most per prompt."),
    temperature: float = typer.Option(0.0, help="0 is greedy; above 0 samples."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling mass (with temperature > 0)."),
    seed: int = typer.Option(0, help="Sampling seed."),
    batch_size: int = typer.Option(8, help="Prompts per batch."),
    chat: bool | None = typer.Option(None, "--chat/--no-chat", help="Use the chat template (default: when "
                                     "the tokenizer has one)."),
) -> None:
    """Generate a reply for every prompt of a JSONL file (batched, the model's chat template)."""
    from mixforge.eval.generate import generate_file

    path = generate_file(model, input_path, output_path, adapter=adapter, chat=chat, max_new_tokens=max_new_tokens,
                         temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size)
    typer.echo(f"wrote {path}")


def chat_command(
    model: str = typer.Option(..., "--model", "-m", help="A hub id, a model directory, an adapter directory "
                              "or a tiny preset."),
    adapter: str | None = typer.Option(None, help="A peft adapter directory to apply on MODEL."),
    system: str | None = typer.Option(None, help="A system prompt."),
    max_new_tokens: int = typer.Option(256, help="Tokens to generate at most per reply."),
    temperature: float = typer.Option(0.0, help="0 is greedy; above 0 samples."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling mass (with temperature > 0)."),
) -> None:
    """Talk to a checkpoint. /reset forgets the conversation, /exit (or end of input) leaves."""
    from mixforge.eval.checkpoint import load_checkpoint
    from mixforge.eval.generate import generate_texts

    ckpt = load_checkpoint(model, adapter=adapter)
    start = [{"role": "system", "content": system}] if system else []
    history = list(start)
    typer.echo(f"chatting with {model} (/reset, /exit)")
    turn = 0
    while True:
        typer.echo("you> ", nl=False)
        line = sys.stdin.readline()
        if not line or line.strip() == "/exit":
            break
        text = line.rstrip("\n")
        if text.strip() == "/reset":
            history = list(start)
            typer.echo("(conversation reset)")
            continue
        if not text.strip():
            continue
        history.append({"role": "user", "content": text})
        reply = generate_texts(ckpt.model, ckpt.tokenizer, [history], max_new_tokens=max_new_tokens,
                               temperature=temperature, top_p=top_p, seed=turn, batch_size=1)[0]
        history.append({"role": "assistant", "content": reply})
        typer.echo(f"model> {reply}")
        turn += 1


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("report")(report_command)
    app.command("generate")(generate_command)
    app.command("chat")(chat_command)
