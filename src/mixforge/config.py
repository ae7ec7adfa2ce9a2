"""Typed run configuration, validated once at the edge (YAML file, SDK call or CLI flags).

    cfg = load_config("run.yaml", overrides={"max_steps": 5})

Every field says what it is where it is declared; that text is also the CLI help. Unknown keys are errors
that name the nearest known key. All problems are reported together, field by field.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mixforge.errors import ConfigError
from mixforge.methods import Method, parse_method


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainOverrides(_Closed):
    """Training hyperparameters. Defaults suit LoRA on a small model; every name is checked."""

    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; wins over max_epochs when both are set.")
    max_epochs: float | None = Field(None, gt=0, description="Passes over the domain data (default 1 when max_steps is unset).")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate of AdamW.")
    lr_scheduler: Literal["constant", "linear", "cosine"] = Field("cosine", description="Decay after warm-up.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps (or use warmup_ratio).")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Warm-up as a share of all steps.")
    global_batch_size: int = Field(16, ge=1, description="Records per optimizer step, over all processes.")
    micro_batch_size: int = Field(4, ge=1, description="Records per forward pass; accumulation = global / (micro x world).")
    max_seq_len: int | None = Field(None, ge=8, description="Tokens per record (default: the model's maximum); longer ones are truncated and counted.")
    packing: bool = Field(False, description="Pack several short records into one sequence, with no attention or position leakage between them.")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping by global norm.")
    lora_rank: int = Field(16, ge=1)
    lora_alpha: float = Field(32, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: list[str] | str | None = Field(None, description="Default: what peft knows for the architecture ('all-linear' otherwise).")
    lora_modules_to_save: list[str] = Field(default_factory=list, description="Modules trained in full beside the adapter, e.g. ['embed_tokens'] when the domain brings new words.")
    seed: int = Field(0, description="Seeds the mixer, dropout and initialization of the adapter.")
    eval_every: int = Field(0, ge=0, description="Steps between forgetting-curve evaluations (0: only at the end).")
    eval_batches: int = Field(4, ge=1, description="Micro-batches per source in each evaluation.")
    save_every: int = Field(0, ge=0, description="Steps between checkpoints (0: only the final one).")
    keep_checkpoints: int = Field(2, ge=1, description="Newest checkpoints kept on disk.")
    log_every: int = Field(1, ge=1)
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16 needs hardware support (most GPUs); fp32 on CPUs.")
    gradient_checkpointing: bool = False
    mix_unit: Literal["examples", "tokens", "loss_tokens"] = Field("examples", description="What the mixing shares count.")
    global_batch_tokens: int | None = Field(None, ge=1, description="Token budget of one optimizer step with token units (default global_batch_size x max_seq_len).")
    force_resume: bool = Field(False, description="Resume even if the data or the mix changed since the checkpoint.")
    dpo_beta: float = Field(0.1, gt=0, description="DPO temperature.")
    quantization: Literal["none", "4bit", "8bit"] = Field("none", description="QLoRA: load the base weights in 4-bit (NF4) or 8-bit through bitsandbytes (LoRA methods, CUDA only; extra mixforge[qlora]).")
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = Field("sdpa", description="Attention kernel; flash_attention_2 needs CUDA and flash-attn (packed rows then attend with variable-length kernels).")
    compile: bool = Field(False, description="torch.compile each decoder layer (faster steps on GPUs after a compile of about a minute).")
    loss_chunk_size: int = Field(1024, ge=0, description="Label tokens per chunk of the output head and loss: never the whole micro-batch's logits at once (0: full logits).")
    loss_kernel: Literal["auto", "chunked", "liger"] = Field("auto", description="auto: Liger's fused linear cross-entropy when installed on CUDA (extra mixforge[liger]), else chunked.")
    replay_loss: Literal["nll", "kl"] = Field("nll", description="Loss on the general (replay) records: nll (cross-entropy to their tokens) or kl (KL(base || tuned) to the base model's next-token distribution; one more forward pass).")

    @model_validator(mode="after")
    def _batch_sizes_divide(self) -> TrainOverrides:
        if self.global_batch_size % self.micro_batch_size:
            raise ValueError(
                f"global_batch_size ({self.global_batch_size}) must be a multiple of micro_batch_size ({self.micro_batch_size})"
            )
        if self.warmup_steps and self.warmup_ratio:
            raise ValueError("set warmup_steps or warmup_ratio, not both")
        return self


class TrackingConfig(_Closed):
    """MLflow tracking. With no URI, runs go to a sqlite store inside the output folder (no server needed)."""

    enabled: bool = True
    experiment_name: str = "mixforge"
    tracking_uri: str | None = Field(None, description="An MLflow server or store URI; default sqlite:///<output>/mlflow.db.")
    run_name: str | None = None


class RunConfig(_Closed):
    """Everything one training run needs."""

    model: str = Field(..., description="Hub id, local Hugging Face directory, or tiny preset.")
    method: Method = Field("sft_lora", description="sft_lora, sft_full, cpt, dpo_lora or dpo_full.")
    data_path: str = Field(..., description="Prepared domain data (JSONL of canonical records).")
    validation_path: str | None = Field(None, description="Held-out domain data for the forgetting curve.")
    output_path: str = Field(..., description="Folder for checkpoints, the final model, metrics and the MLflow store.")
    job_name: str = "mixforge-run"
    data_mixing_enabled: bool = True
    mixing: dict[str, Any] | None = Field(None, description="Data mixing config (see `mixforge mix show`); default: the catalogue's defaults.")
    general_sources: list[dict[str, Any]] = Field(default_factory=list, description="Extra general sources: {name, path, category, weight?}.")
    overrides: TrainOverrides = Field(default_factory=TrainOverrides)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    runtime: dict[str, Any] = Field(default_factory=lambda: {"kind": "local"}, description="Where the run executes.")
    trust_remote_code: bool = False

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> str:
        return parse_method(value)

    @model_validator(mode="after")
    def _quantized_base_needs_lora(self) -> RunConfig:
        if self.overrides.quantization != "none" and not self.method.endswith("_lora"):
            raise ValueError(f"overrides.quantization: {self.overrides.quantization!r} quantizes frozen base weights; "
                             f"it needs a LoRA method (sft_lora or dpo_lora), not {self.method!r}")
        return self


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; known names: {', '.join(sorted(known))}"


def _unknown_keys(data: dict[str, Any], model: type[BaseModel], prefix: str = "") -> list[str]:
    problems = []
    known = list(model.model_fields)
    for key, value in data.items():
        if key not in model.model_fields:
            problems.append(f"{prefix}{key}: unknown name{_suggest(key, known)}")
            continue
        annotation = model.model_fields[key].annotation
        if isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            problems.extend(_unknown_keys(value, annotation, prefix=f"{prefix}{key}."))
    return problems


def _format(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg']}" for err in exc.errors()]


def parse_overrides(overrides: dict[str, Any] | None) -> TrainOverrides:
    """Validate a dict of training overrides; an unknown name is an error that suggests the nearest one."""
    overrides = dict(overrides or {})
    problems = _unknown_keys(overrides, TrainOverrides, prefix="overrides.")
    if problems:
        raise ConfigError(problems)
    try:
        return TrainOverrides(**overrides)
    except ValidationError as exc:
        raise ConfigError([f"overrides.{p}" for p in _format(exc)]) from None


def parse_run_config(data: dict[str, Any]) -> RunConfig:
    """Validate a whole run configuration (as read from YAML), reporting every problem at once."""
    problems = _unknown_keys(data, RunConfig)
    if problems:
        raise ConfigError(problems)
    try:
        return RunConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_format(exc)) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML run config; `overrides` (e.g. from the CLI) update its `overrides:` section."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of field names")
    if overrides:
        data["overrides"] = {**(data.get("overrides") or {}), **overrides}
    return parse_run_config(data)
