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
    detach: bool = typer.Option(False, "--detach", help="Start the run in the background and return its job id."),
) -> None:
    """Train a model with data mixing, as a config file describes."""
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
    if detach:
        from mixforge.runtime.local import launch

        job = launch(cfg)
        console.print(f"started job {job.id} (pid {job.pid}); log: {job.log_path}")
        return
    from mixforge.train.recipe import run

    result = run(cfg)
    console.print(f"[bold]{result.status}[/] after {result.steps} steps; output: {result.output_path}")
    if result.final_path:
        console.print(f"final model: {result.final_path}")
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
