"""Typed run configuration, validated once at the edge (YAML file, SDK call or CLI flags).

    cfg = load_config("run.yaml", overrides={"max_steps": 5})

Every field says what it is where it is declared; that text is also the CLI help. Unknown keys are errors
that name the nearest known key. All problems are reported together, field by field.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mixforge.errors import ConfigError
from mixforge.methods import Method, parse_method
from mixforge.mix.config import DataMixingConfig
from mixforge.suggest import did_you_mean


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
    log_every: int = Field(1, ge=1, description="Steps between rows of the run's metrics.jsonl (MLflow: tracking.log_every).")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16 needs hardware support (most GPUs); fp32 on CPUs.")
    gradient_checkpointing: bool = False
    mix_unit: Literal["examples", "tokens", "loss_tokens"] = Field("examples", description="What the mixing shares count.")
    global_batch_tokens: int | None = Field(None, ge=1, description="Token budget of one optimizer step with token units (default global_batch_size x max_seq_len).")
    force_resume: bool = Field(False, description="Resume even if the data or the mix changed since the checkpoint.")
    dpo_beta: float = Field(0.1, gt=0, description="DPO temperature.")
    quantization: Literal["none", "4bit", "8bit"] = Field("none", description="QLoRA: load the base weights in 4-bit (NF4) or 8-bit through bitsandbytes (LoRA methods, CUDA only; extra mixforge[qlora]).")
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = Field("sdpa", description="Attention kernel; flash_attention_2 needs CUDA and flash-attn (packed rows then attend with variable-length kernels).")
    compile: bool = Field(False, description="torch.compile each decoder layer (faster steps on GPUs after a compile of about a minute).")
    loss_chunk_size: int | None = Field(None, ge=0, description="Label tokens per chunk of the output head and loss: never the whole micro-batch's logits at once (0: full logits; default: 2**24 / vocabulary, between 128 and 1024, about 64 MB of fp32 logits a chunk).")
    loss_kernel: Literal["auto", "chunked", "liger"] = Field("auto", description="auto: Liger's fused linear cross-entropy when installed on CUDA (extra mixforge[liger]), else chunked.")
    replay_loss: Literal["nll", "kl"] = Field("nll", description="Loss on the general (replay) records: nll (cross-entropy to their tokens) or kl (KL(base || tuned) to the base model's next-token distribution; one more forward pass).")
    replay_kl_tokens: Literal["labels", "all"] = Field("labels", description="replay_loss kl: where the KL is measured: labels (the tokens that would carry the NLL) or all (every next-token position of the replay record, prompt included, averaged so the replay's total weight stays that of its label tokens).")

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
    log_every: int = Field(10, ge=1, description="MLflow gets every Nth step's metrics and the last step's (the "
                           "run's metrics.jsonl keeps every step): a step logs about ten figures per mixed source, "
                           "and the sqlite store takes about 0.1 ms of CPU for each.")


# ---------------------------------------------------------------------------------------------------------
# runtimes: where a run executes (`runtime: {kind: torchrun, nproc_per_node: 2}`); mixforge.runtime launches them
# ---------------------------------------------------------------------------------------------------------
class _Runtime(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalRuntime(_Runtime):
    """One process on this machine (the default). `mixforge train` runs it in its own process."""

    kind: Literal["local"] = "local"
    python: str = Field(default_factory=lambda: sys.executable, description="The interpreter that runs the entry point.")


# the settings of every runtime that launches torchrun-style ranks (torchrun, ray, kubernetes, slurm)
STRATEGY_HELP = ("ddp: every rank holds the whole model; fsdp: FSDP2 shards weights, gradients and optimizer state "
                 "over the ranks (one decoder layer gathered at a time; sharded checkpoints)")
CPU_OFFLOAD_HELP = "fsdp only: keep the weight shards and their optimizer state in CPU memory (slower; fits larger models)."


class TorchrunRuntime(_Runtime):
    """Several processes (ranks) per node through torchrun; one node unless `nnodes` and `rdzv_endpoint` say
    otherwise (then run the same launch on every node)."""

    kind: Literal["torchrun"] = "torchrun"
    nproc_per_node: int = Field(2, ge=1, description="Ranks on this node: the number of GPUs, or of CPU processes.")
    nnodes: int = Field(1, ge=1, description="Nodes; more than one needs rdzv_endpoint.")
    strategy: Literal["ddp", "fsdp"] = Field("ddp", description=STRATEGY_HELP)
    fsdp_cpu_offload: bool = Field(False, description=CPU_OFFLOAD_HELP)
    rdzv_endpoint: str | None = Field(None, description="host:port of the rendezvous, needed when nnodes > 1.")
    rdzv_id: str | None = Field(None, description="The same on every node (default: the job id).")
    max_restarts: int = Field(0, ge=0, description="torchrun restarts the whole group on a worker failure; the recipe resumes.")
    python: str = Field(default_factory=lambda: sys.executable, description="The interpreter of the launcher and the ranks.")
    entry: str = Field("mixforge.train.entry", description="The module each rank runs with the config path (`python -m`).")

    @model_validator(mode="after")
    def _launchable(self) -> TorchrunRuntime:
        problems = []
        if self.nnodes > 1 and not self.rdzv_endpoint:
            problems.append(f"rdzv_endpoint: nnodes={self.nnodes} needs rdzv_endpoint='HOST:PORT' (a node every rank can reach)")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


class RayRuntime(_Runtime):
    """Ray Train workers, on a running cluster (`address="auto"` or "ray://host:10001") or a local Ray started
    for the job (address None). Extra: mixforge[ray]."""

    kind: Literal["ray"] = "ray"
    address: str | None = Field(None, description="A running Ray cluster; None starts a local Ray for the job.")
    num_workers: int = Field(2, ge=1, description="Ray Train workers (ranks).")
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    strategy: Literal["ddp", "fsdp"] = Field("ddp", description=STRATEGY_HELP)
    fsdp_cpu_offload: bool = Field(False, description=CPU_OFFLOAD_HELP)
    python: str = Field(default_factory=lambda: sys.executable, description="The interpreter of the Ray driver.")


class KubernetesRuntime(_Runtime):
    """A Kubeflow PyTorchJob on a cluster with the training operator, submitted with kubectl."""

    kind: Literal["kubernetes"] = "kubernetes"
    image: str = Field(..., min_length=1, description="An image with mixforge installed (and the model, unless it comes from the hub or a claim).")
    namespace: str = "kubeflow"
    nodes: int = Field(1, ge=1, description="Pods: one Master and nodes - 1 Workers.")
    gpus_per_node: int = Field(0, ge=0, description="nvidia.com/gpu per pod, and the ranks per pod (one rank on CPU-only pods).")
    cpus_per_node: str = "4"
    strategy: Literal["ddp", "fsdp"] = Field("ddp", description=STRATEGY_HELP)
    fsdp_cpu_offload: bool = Field(False, description=CPU_OFFLOAD_HELP)
    memory: str = "16Gi"
    data_claim: str | None = Field(None, description="PersistentVolumeClaim with the prepared data, mounted read-only.")
    output_claim: str | None = Field(None, description="PersistentVolumeClaim for checkpoints, the final model and metrics (required).")
    data_mount: str = "/mnt/data"
    output_mount: str = "/mnt/output"
    image_pull_policy: str = "IfNotPresent"
    service_account: str | None = None
    termination_grace_s: int = Field(300, ge=0, description="Seconds a pod has after SIGTERM to write its checkpoint.")
    backoff_limit: int = Field(3, ge=0, description="Pod restarts before the job fails (each restart resumes from a checkpoint).")
    manifest_dir: str | None = Field(None, description="Where manifests are written (default MIXFORGE_HOME/jobs/<id>/).")

    @model_validator(mode="after")
    def _has_output_claim(self) -> KubernetesRuntime:
        if not self.output_claim:
            raise ValueError("output_claim: a pod's own files vanish when it ends; name the PersistentVolumeClaim "
                             "that keeps checkpoints and the final model")
        return self

    @property
    def nproc_per_node(self) -> int:
        return max(self.gpus_per_node, 1)


class SlurmRuntime(_Runtime):
    """torchrun on `nodes` Slurm nodes, through an sbatch script."""

    kind: Literal["slurm"] = "slurm"
    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(0, ge=0, description="And the ranks per node (one rank on CPU-only nodes).")
    cpus_per_task: int = Field(8, ge=1)
    strategy: Literal["ddp", "fsdp"] = Field("ddp", description=STRATEGY_HELP)
    fsdp_cpu_offload: bool = Field(False, description=CPU_OFFLOAD_HELP)
    partition: str | None = None
    account: str | None = None
    time: str = Field("24:00:00", description="The job's time limit.")
    signal_before_end_s: int = Field(300, ge=0, description="SIGTERM this long before the time limit: checkpoint, then exit.")
    setup: str = Field("", description="Shell lines run first on each node, e.g. 'source .venv/bin/activate'.")
    python: str = "python"
    rdzv_port: int = Field(29500, ge=1, le=65535)

    @property
    def nproc_per_node(self) -> int:
        return max(self.gpus_per_node, 1)


Runtime = Annotated[LocalRuntime | TorchrunRuntime | RayRuntime | KubernetesRuntime | SlurmRuntime,
                    Field(discriminator="kind")]
RUNTIMES: dict[str, type[BaseModel]] = {"local": LocalRuntime, "torchrun": TorchrunRuntime, "ray": RayRuntime,
                                        "kubernetes": KubernetesRuntime, "slurm": SlurmRuntime}
_CLASS_KINDS = {cls.__name__: kind for kind, cls in RUNTIMES.items()}  # `kind: TorchrunRuntime` works too


def _short_kind(value: Any) -> Any:
    if isinstance(value, Mapping) and value.get("kind") in _CLASS_KINDS:
        return {**value, "kind": _CLASS_KINDS[value["kind"]]}
    return value


class RunConfig(_Closed):
    """Everything one training run needs."""

    model: str = Field(..., description="Hub id, local Hugging Face directory, or tiny preset.")
    method: Method = Field("sft_lora", description="sft_lora, sft_full, cpt, dpo_lora or dpo_full.")
    data_path: str = Field(..., description="Prepared domain data (JSONL of canonical records).")
    validation_path: str | None = Field(None, description="Held-out domain data for the forgetting curve.")
    output_path: str = Field(..., description="Folder for checkpoints, the final model, metrics and the MLflow store.")
    job_name: str = "mixforge-run"
    data_mixing_enabled: bool = True
    mixing: DataMixingConfig | None = Field(None, description="Data mixing config (see `mixforge mix show`; the seed's nova_<category>_percent keys work too); default: the catalogue's defaults. Your own general data goes under mixing.sources.")
    overrides: TrainOverrides = Field(default_factory=TrainOverrides)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    runtime: Runtime = Field(default_factory=LocalRuntime, description="Where the run executes: {kind: local | torchrun | ray | kubernetes | slurm, ...its settings}.")
    trust_remote_code: bool = False

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> str:
        return parse_method(value)

    @field_validator("runtime", mode="before")
    @classmethod
    def _runtime_kind(cls, value: Any) -> Any:
        return _short_kind(value)

    @model_validator(mode="after")
    def _quantized_base_needs_lora(self) -> RunConfig:
        if self.overrides.quantization != "none" and not self.method.endswith("_lora"):
            raise ValueError(f"overrides.quantization: {self.overrides.quantization!r} quantizes frozen base weights; "
                             f"it needs a LoRA method (sft_lora or dpo_lora), not {self.method!r}")
        return self


def _suggest(name: str, known: list[str]) -> str:
    return did_you_mean(name, known) or f"; known names: {', '.join(sorted(known))}"


_MOVED = {"general_sources": "mixing.sources (each {name, category, path or hub_id, weight})"}


def _unknown_keys(data: dict[str, Any], model: type[BaseModel], prefix: str = "") -> list[str]:
    problems = []
    known = list(model.model_fields)
    for key, value in data.items():
        if key not in model.model_fields:
            moved = _MOVED.get(key) if model is RunConfig else None
            problems.append(f"{prefix}{key}: " + (f"moved to {moved}" if moved else f"unknown name{_suggest(key, known)}"))
            continue
        if model is RunConfig and key == "runtime" and isinstance(value, Mapping):
            problems.extend(_runtime_problems(value, prefix=f"{prefix}runtime."))
            continue
        annotation = model.model_fields[key].annotation
        if isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            problems.extend(_unknown_keys(value, annotation, prefix=f"{prefix}{key}."))
    return problems


def _runtime_problems(spec: Mapping[str, Any], prefix: str = "runtime.") -> list[str]:
    """An unknown kind, or a setting the kind does not have (and which kind has it), each named."""
    kind = _short_kind(spec).get("kind")
    if kind is None:
        return [f"{prefix}kind: missing; one of {', '.join(RUNTIMES)}"]
    if kind not in RUNTIMES:
        return [f"{prefix}kind: {kind!r} is not one of {', '.join(RUNTIMES)}" + did_you_mean(str(kind), RUNTIMES)]
    fields = RUNTIMES[kind].model_fields
    problems = []
    for key in spec:
        if key not in fields:
            elsewhere = [k for k, cls in RUNTIMES.items() if key in cls.model_fields]
            where = f" (a setting of kind {' and '.join(elsewhere)})" if elsewhere else ""
            problems.append(f"{prefix}{key}: not a setting of runtime kind {kind!r}{where}"
                            f"{_suggest(str(key), [f for f in fields if f != 'kind'])}")
    return problems


def _format(exc: ValidationError) -> list[str]:
    """One line per problem: the field's dotted path (without the union's tag) and the message; the nested
    configs' validators list several problems in one message, one per line."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if len(loc) > 1 and loc[0] == "runtime" and loc[1] in RUNTIMES:
            loc.pop(1)  # runtime.torchrun.nnodes -> runtime.nnodes
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in ("less_than_equal", "greater_than_equal", "greater_than", "less_than"):
            msg += f" (got {err.get('input')!r})"
        for line in msg.split("\n"):
            named = re.match(r"([A-Za-z_][\w-]*): ", line)  # "field: why" from a validator: field joins the path
            path = [*loc, named.group(1)] if named else loc
            out.append(f"{'.'.join(path) or '(config)'}: {line[named.end():] if named else line}")
    return out


def parse_runtime(spec: Mapping[str, Any] | BaseModel | None) -> Runtime:
    """A runtime from its `runtime:` section, e.g. {"kind": "torchrun", "nproc_per_node": 2}; None: local."""
    if spec is None:
        return LocalRuntime()
    if isinstance(spec, BaseModel):
        spec = spec.model_dump()
    problems = _runtime_problems(spec)
    if problems:
        raise ConfigError(problems)
    try:
        return _RuntimeSection(runtime=_short_kind(spec)).runtime
    except ValidationError as exc:
        raise ConfigError(_format(exc)) from None


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


class _RuntimeSection(BaseModel):
    """The `runtime:` section alone (its errors read as in a whole run config)."""

    runtime: Runtime
