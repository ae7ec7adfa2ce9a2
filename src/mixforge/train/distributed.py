"""Processes and parallelism: the world (one process or one rank of a torchrun launch), DDP or FSDP2 wrapping,
sharded checkpoints and the gathered final save.

    world = init_world()                                        # gloo on CPU, NCCL on GPU
    train_model = wrap_model(model, strategy="fsdp", world=world, loss_chunk_size=1024)
    loss_sum = train_model(**batch)                             # the loss is computed inside the wrapped forward
    save_checkpoint(root, step=..., train_model=..., ...)       # FSDP: every rank writes its shard (DCP)
    save_final_model(train_model, tokenizer, out, world)        # FSDP: shards gathered to rank 0, one HF folder

DDP: every rank holds the whole model, gradients are averaged after backward; checkpoints and the final folder
come from rank 0's copy. FSDP (`torch.distributed.fsdp.fully_shard`, FSDP2): every decoder layer is its own
unit, then the root (embeddings, final norm, output head), so a rank holds 1/world of the weights, gradients and
AdamW state, and gathers one layer's weights at a time. On GPUs the weights compute in bf16 and gradients are
reduced in fp32 (`MixedPrecisionPolicy`); `cpu_offload` keeps the shards and their optimizer state in host memory.
FSDP checkpoints are `torch.distributed.checkpoint` (DCP) folders of model and optimizer shards, plus the
scheduler, the mixer and each rank's RNG state; DCP reshards on load, so a run may resume on another number of
processes (or as one process).
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from mixforge.errors import ConfigError
from mixforge.io.atomic import replace_directory
from mixforge.train import checkpoint as ckpt
from mixforge.train.losses import TokenLoss, liger_available

Strategy = Literal["ddp", "fsdp"]
SHARDED = "sharded"  # the DCP folder inside an FSDP checkpoint


# ---------------------------------------------------------------------------------------------------------
# the world
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world() -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(device="cuda" if torch.cuda.is_available() else "cpu")
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    rank, local = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return World(rank=rank, size=size, device=f"cuda:{local}" if torch.cuda.is_available() else "cpu")


def all_reduce_sum(value: float, world: World) -> float:
    return _all_reduce(value, world, "sum")


def all_reduce_max(value: float, world: World) -> float:
    return _all_reduce(value, world, "max")


def _all_reduce(value: float, world: World, op: str) -> float:
    if world.size == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return float(t.item())


def barrier(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        dist.barrier()


def parallel_settings(runtime) -> tuple[Strategy, bool]:
    """(strategy, fsdp_cpu_offload) of a run's runtime section; the one-process runtime has neither: ddp."""
    if isinstance(runtime, dict):  # an untyped runtime section (as older run_config.json files hold)
        return runtime.get("strategy", "ddp"), bool(runtime.get("fsdp_cpu_offload", False))
    return getattr(runtime, "strategy", "ddp"), bool(getattr(runtime, "fsdp_cpu_offload", False))


# ---------------------------------------------------------------------------------------------------------
# what this machine can run: refused before anything loads, with the reason
# ---------------------------------------------------------------------------------------------------------
def check_devices(*, quantization: str = "none", attn_implementation: str = "sdpa", loss_kernel: str = "auto",
                  strategy: Strategy = "ddp", cuda: bool | None = None) -> None:
    """ConfigError naming every setting this machine cannot run (CUDA, or a missing extra)."""
    from importlib.util import find_spec

    cuda = torch.cuda.is_available() if cuda is None else cuda
    problems = []
    if quantization != "none" and strategy == "fsdp":
        problems.append(f"overrides.quantization: {quantization!r} under strategy 'fsdp' is not supported "
                        "(bitsandbytes weights do not shard); use strategy 'ddp' with QLoRA")
    elif quantization != "none":
        if not cuda:
            problems.append(f"overrides.quantization: {quantization!r} (QLoRA through bitsandbytes) needs a CUDA "
                            "GPU, and none is visible here; use quantization='none' on CPU")
        elif find_spec("bitsandbytes") is None:
            problems.append(f"overrides.quantization: {quantization!r} needs bitsandbytes: pip install 'mixforge[qlora]'")
    if attn_implementation == "flash_attention_2":
        if not cuda:
            problems.append("overrides.attn_implementation: 'flash_attention_2' needs a CUDA GPU; use 'sdpa'")
        elif find_spec("flash_attn") is None:
            problems.append("overrides.attn_implementation: 'flash_attention_2' needs flash-attn: pip install flash-attn")
    if loss_kernel == "liger" and not liger_available():
        problems.append("overrides.loss_kernel: 'liger' needs a CUDA GPU and liger-kernel: "
                        "pip install 'mixforge[liger]'")
    if problems:
        raise ConfigError(problems)


# ---------------------------------------------------------------------------------------------------------
# wrapping
# ---------------------------------------------------------------------------------------------------------
def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks (the classes a Hugging Face model names in `_no_split_modules`)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft model or HF model
    names = set(base._no_split_modules or [])
    return [m for m in base.modules() if type(m).__name__ in names]


def wrap_model(model: nn.Module, *, strategy: Strategy, world: World, loss_chunk_size: int = 1024,
               loss_kernel: str = "auto", cpu_offload: bool = False, compile: bool = False) -> nn.Module:  # noqa: A002
    """The module the training loop calls: the model with its loss inside forward (`TokenLoss`), under DDP or
    FSDP when there are several processes. `model` keeps its parameters (FSDP shards them in place), so build
    the optimizer from them after this call."""
    if compile:  # each block separately: the graph breaks stay small and FSDP's hooks stay outside
        for layer in decoder_layers(model):
            layer.compile()
    train_model = TokenLoss(model, chunk_size=loss_chunk_size, kernel=loss_kernel)
    if world.size == 1:
        return train_model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(train_model)
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    on_gpu = world.device.startswith("cuda")
    # bf16 compute on GPUs with fp32 gradient reduction; the sharded master weights keep their own dtype
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if on_gpu else MixedPrecisionPolicy()
    offload = CPUOffloadPolicy() if cpu_offload else OffloadPolicy()
    layers = decoder_layers(model)
    if not layers:
        raise ConfigError(f"strategy 'fsdp': found no decoder layers in {type(model).__name__} (no _no_split_modules)")
    for layer in layers:
        fully_shard(layer, mp_policy=mp, offload_policy=offload)
    fully_shard(train_model, mp_policy=mp, offload_policy=offload)  # the root: embeddings, final norm, head
    return train_model


def unwrap(train_model: nn.Module) -> nn.Module:
    """The causal LM (peft or Hugging Face model) inside what `wrap_model` returned; anything else as is."""
    if hasattr(train_model, "module"):  # DistributedDataParallel
        train_model = train_model.module
    return train_model.model if isinstance(train_model, TokenLoss) else train_model


def is_sharded(train_model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(train_model, FSDPModule)


def no_sync(train_model: nn.Module, sync: bool):
    """DDP: skip the gradient all-reduce on all but the last micro-batch. FSDP reduce-scatters every micro-batch
    (keeping unsharded gradients between micro-batches would cost a whole model of memory)."""
    return nullcontext() if sync or not hasattr(train_model, "no_sync") else train_model.no_sync()


# ---------------------------------------------------------------------------------------------------------
# checkpoints: one unsharded copy (rank 0) or DCP shards (every rank)
# ---------------------------------------------------------------------------------------------------------
def save_checkpoint(root: str | os.PathLike[str], *, step: int, train_model: nn.Module, optimizer, scheduler,
                    state: dict[str, Any], keep: int, world: World) -> Path:
    """Checkpoint `step` under `root` (all ranks call this); returns its folder."""
    root = Path(root)
    if not is_sharded(train_model):
        if world.main:
            ckpt.save_checkpoint(root, step=step, model=unwrap(train_model), optimizer=optimizer,
                                 scheduler=scheduler, state=state, keep=keep)
        barrier(world)
        return root / ckpt.folder_name(step)
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    final = root / ckpt.folder_name(step)
    tmp = root / f".{final.name}.partial"  # the same name on every rank; renamed into place when complete
    if world.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(world)
    model_state, optim_state = get_state_dict(train_model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(tmp / SHARDED))
    torch.save({"rng": ckpt.rng_state()}, tmp / f"rng-{world.rank:05d}.pt")
    barrier(world)
    if world.main:
        torch.save({"scheduler": scheduler.state_dict(), "rng": ckpt.rng_state(), "world_size": world.size},
                   tmp / ckpt.TRAINER_FILE)
        (tmp / ckpt.STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=1, default=str))  # last
        replace_directory(tmp, final)  # the previous checkpoint of this step stays until the new one is in place
        ckpt.prune(root, keep)
    barrier(world)
    return final


def load_checkpoint(path: Path, *, train_model: nn.Module, optimizer, scheduler, world: World) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG from checkpoint `path` (either format, any world size for
    sharded ones); returns its state.json."""
    if not (path / SHARDED).is_dir():
        if is_sharded(train_model):
            raise ConfigError(f"{path} is an unsharded (DDP or one-process) checkpoint; resume it with strategy 'ddp'")
        ckpt.load_weights_into(unwrap(train_model), path)
        return ckpt.load_training_state(path, optimizer=optimizer, scheduler=scheduler)
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(train_model, optimizer)
    target = {"model": model_state, "optim": optim_state}
    dcp.load(target, checkpoint_id=str(path / SHARDED))
    set_state_dict(train_model, optimizer, model_state_dict=target["model"], optim_state_dict=target["optim"])
    blob = torch.load(path / ckpt.TRAINER_FILE, map_location="cpu", weights_only=True)
    scheduler.load_state_dict(blob["scheduler"])
    own = path / f"rng-{world.rank:05d}.pt"  # this rank's RNG when the rank existed before, else rank 0's
    ckpt.set_rng_state(torch.load(own, weights_only=True)["rng"] if own.exists() else blob["rng"])
    return json.loads((path / ckpt.STATE_FILE).read_text())


# ---------------------------------------------------------------------------------------------------------
# the final model: one plain Hugging Face folder (or the LoRA adapter), whatever the strategy
# ---------------------------------------------------------------------------------------------------------
def save_final_model(train_model: nn.Module, tokenizer, out: str | os.PathLike[str], world: World) -> Path:
    """All ranks call this; rank 0 writes `out` atomically. FSDP shards are gathered to rank 0 first (in CPU
    memory), so `out` loads with `AutoModelForCausalLM.from_pretrained` (or `PeftModel.from_pretrained`)."""
    from mixforge.models.save import atomic_directory, save_model_dir

    model = unwrap(train_model)
    if not is_sharded(train_model):
        if world.main:
            save_model_dir(model, tokenizer, out)
        barrier(world)
        return Path(out)
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(train_model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if world.main:
        prefix = "model."  # TokenLoss holds the model as `.model`
        state = {k.removeprefix(prefix): v for k, v in full.items()}
        with atomic_directory(out) as tmp:
            model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
    barrier(world)
    return Path(out)


# ---------------------------------------------------------------------------------------------------------
# every rank runs the same number of forward passes of each kind (FSDP gathers weights in every forward)
# ---------------------------------------------------------------------------------------------------------
def even_chunks(chunks: list[tuple[str, list]], world: World, filler: dict[str, list]) -> list[tuple[str, list]]:
    """Pad this rank's micro-batches with `filler[kind]` (items with nothing to learn) until every rank runs as
    many micro-batches of each kind as the busiest one; kinds stay in the order given."""
    if world.size == 1:
        return chunks
    out = []
    for what in filler:
        mine = [c for c in chunks if c[0] == what]
        most = int(all_reduce_max(float(len(mine)), world))
        out += mine + [(what, filler[what])] * (most - len(mine))
    return out
