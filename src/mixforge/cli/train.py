"""`mixforge train --config run.yaml` and `mixforge merge`."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _parse_set(values: list[str]) -> dict[str, object]:
    """`--set max_steps=5 --set learning_rate=1e-4` -> typed overrides (YAML scalars)."""
    import yaml

    from mixforge.errors import ConfigError

    out: dict[str, object] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected NAME=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def train(
    config: Path = typer.Option(..., "--config", "-c", help="Run config YAML (model, method, data_path, mixing, overrides, tracking, runtime)."),
    set_: list[str] = typer.Option([], "--set", help="Override a training setting, e.g. --set max_steps=5 (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved configuration and the mix; do not train."),
    detach: bool = typer.Option(False, "--detach", help="Launch the run on its runtime in the background and return its job id at once."),
) -> None:
    """Train a model with data mixing, as a config file describes. The `local` runtime trains in this process;
    any other runtime (torchrun, ray, kubernetes, slurm) is launched as a job whose log is followed to its end,
    and the command exits with the job's status (0: succeeded). Ctrl-C stops the job cleanly (checkpoint)."""
    from rich.console import Console

    from mixforge.config import load_config
    from mixforge.train.mixing import mixing_config

    console = Console()
    cfg = load_config(config, overrides=_parse_set(set_))
    if dry_run:
        mix = mixing_config(cfg.mixing, enabled=cfg.data_mixing_enabled, model=cfg.model, method=cfg.method)
        resolved = json.loads(cfg.model_dump_json())
        resolved["mixing"] = mix.to_dict()
        console.print_json(json.dumps(resolved))
        return
    if detach or cfg.runtime.kind != "local":
        from mixforge.runtime import launch

        job = launch(cfg)
        if detach:
            where = f" (pid {job.pid})" if job.pid else ""
            console.print(f"started job {job.id} on {cfg.runtime.kind}{where}; log: {job.log_path or job.record.manifest_path}")
            return
        _follow(job, cfg, console)
        return
    from mixforge.train.recipe import run

    result = run(cfg)
    _summary(console, cfg, result.status, result.steps, result.final_path)


def _follow(job, cfg, console) -> None:
    """Print the job's log as it grows until it ends; exit with its status (0 only when it succeeded)."""
    from mixforge.errors import ConfigError

    record = job.record
    if record.active and record.pid is None and record.external_id is None:  # written, not submitted
        raise ConfigError(f"job {job.id} ({cfg.runtime.kind}) was not submitted: {record.message}",
                          hint=f"submit it as shown, then `mixforge jobs logs {job.id} --follow` (or use --detach)")
    console.print(f"job {job.id} on {cfg.runtime.kind}; following its log (Ctrl-C stops it cleanly)", highlight=False)
    try:
        for chunk in job.follow():
            typer.echo(chunk, nl=False)
    except KeyboardInterrupt:
        console.print(f"\nstopping job {job.id} (checkpoint, then exit) ...")
        job.stop()
        for chunk in job.follow():
            typer.echo(chunk, nl=False)
        console.print(f"job {job.id}: {job.status}; `mixforge jobs resume {job.id}` continues it")
        raise typer.Exit(130) from None
    status = job.status
    result = job.result or {}
    if status != "succeeded":
        console.print(f"[bold red]{status}[/]: job {job.id}" + (f"\n{job.record.message}" if job.record.message else ""))
        raise typer.Exit(1)
    _summary(console, cfg, status, result.get("steps"), result.get("final_path"))


def _summary(console, cfg, status: str, steps: int | None, final_path: str | None) -> None:
    console.print(f"[bold]{status}[/] after {steps} steps; output: {cfg.output_path}")
    if final_path:
        console.print(f"final model: {final_path}")
    store = cfg.tracking.tracking_uri or f"sqlite:///{Path(cfg.output_path).resolve() / 'mlflow.db'}"
    if cfg.tracking.enabled:
        console.print(f"MLflow: mlflow ui --backend-store-uri {store}")


def merge(
    adapter: Path = typer.Argument(..., help="A LoRA adapter folder (e.g. runs/x/final)."),
    out: Path = typer.Option(..., "--out", help="Where to write the standalone Hugging Face model."),
    trust_remote_code: bool = typer.Option(False, help="Run code shipped with the base model (off by default)."),
) -> None:
    """Merge a LoRA adapter into its base model and save a standalone model (safetensors)."""
    from mixforge.train.merge import merge_adapter

    path = merge_adapter(adapter, out, trust_remote_code=trust_remote_code)
    typer.echo(f"merged model written to {path}")
