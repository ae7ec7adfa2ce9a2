"""TorchrunRuntime: the same entry point under torch.distributed's elastic launcher (torchrun).

    python -m torch.distributed.run --nnodes=1 --nproc_per_node=8 --standalone -m mixforge.train.entry CFG.json

Each rank takes its disjoint share of every global batch from the mixer, the recipe wraps the model in DDP
(NCCL on GPUs, gloo on CPUs) and only rank 0 logs and saves, so the records of each optimizer step and the
loss do not depend on the number of processes. The launcher runs as a local process and is watched like a
LocalRuntime job; `stop` sends SIGTERM to torchrun, which forwards it once to every worker (checkpoint, then
exit).

`strategy: fsdp` shards weights, gradients and optimizer state over the ranks instead (FSDP2; sharded
checkpoints, one plain Hugging Face folder at the end: mixforge.train.distributed).
"""

from __future__ import annotations

from pathlib import Path

from mixforge.config import RunConfig, TorchrunRuntime
from mixforge.errors import ConfigError
from mixforge.runtime.jobs import Job, new_job_id
from mixforge.runtime.local import kill_leftovers, logs, poll, start_process, stop  # noqa: F401 - this kind's watch functions

__all__ = ["TorchrunRuntime", "command", "launch"]


def command(runtime: TorchrunRuntime, config_path: Path | str, job_id: str = "mixforge") -> list[str]:
    """The torchrun command line: one node with a local rendezvous, or a c10d rendezvous for several nodes."""
    argv = [runtime.python, "-m", "torch.distributed.run", f"--nnodes={runtime.nnodes}",
            f"--nproc_per_node={runtime.nproc_per_node}", f"--max_restarts={runtime.max_restarts}"]
    if runtime.nnodes == 1 and not runtime.rdzv_endpoint:
        argv.append("--standalone")  # a local rendezvous on a free port
    else:
        argv += ["--rdzv_backend=c10d", f"--rdzv_endpoint={runtime.rdzv_endpoint}",
                 f"--rdzv_id={runtime.rdzv_id or job_id}"]
    return [*argv, "-m", runtime.entry, str(config_path)]


def launch(cfg: RunConfig, runtime: TorchrunRuntime, *, job_id: str | None = None) -> Job:
    """Check that the global batch splits over the ranks, then start torchrun; returns the job at once."""
    o = cfg.overrides
    from mixforge.train.distributed import check_devices  # e.g. QLoRA on a machine without CUDA: refused here

    check_devices(quantization=o.quantization, attn_implementation=o.attn_implementation, loss_kernel=o.loss_kernel,
                  strategy=runtime.strategy)
    if o.mix_unit == "examples" and o.global_batch_size % runtime.world_size:
        raise ConfigError(f"overrides.global_batch_size ({o.global_batch_size}) must be a multiple of the "
                          f"world size ({runtime.world_size}): each rank takes an equal share of every step")
    job_id = job_id or new_job_id()
    return start_process(cfg, runtime, job_id=job_id, command=lambda path: command(runtime, path, job_id))
