"""TorchrunRuntime: the same entry point under torch.distributed's elastic launcher (torchrun).

    python -m torch.distributed.run --nnodes=1 --nproc_per_node=8 --standalone -m mixforge.train.entry CFG.json

Each rank takes its disjoint share of every global batch from the mixer, the recipe wraps the model in DDP
(NCCL on GPUs, gloo on CPUs) and only rank 0 logs and saves, so the records of each optimizer step and the
loss do not depend on the number of processes. The launcher runs as a local process and is watched like a
LocalRuntime job; `stop` sends SIGTERM to torchrun, which forwards it once to every worker (checkpoint, then
exit).

FSDP (`strategy="fsdp"`) is not supported by the training recipe yet: its checkpoints and final save gather a
plain (unsharded) model, so asking for it is a ConfigError rather than a silent DDP run.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from mixforge.config import RunConfig
from mixforge.errors import ConfigError
from mixforge.runtime.jobs import Job
from mixforge.runtime.local import kill_leftovers, logs, poll, start_process, stop  # noqa: F401 - this kind's watch functions

FSDP_UNSUPPORTED = ("strategy='fsdp' is not supported yet: the recipe saves checkpoints and the final model "
                    "from one unsharded copy of the weights; use strategy='ddp' (every rank holds the model) "
                    "or LoRA with gradient_checkpointing to fit a larger model")


@dataclass(frozen=True)
class TorchrunRuntime:
    """Several processes (ranks) per node through torchrun; one node unless `nnodes` and `rdzv_endpoint` say
    otherwise (then run the same launch on every node)."""

    nproc_per_node: int = 2  # ranks on this node: the number of GPUs, or of CPU processes
    nnodes: int = 1
    strategy: Literal["ddp", "fsdp"] = "ddp"
    rdzv_endpoint: str | None = None  # host:port of the rendezvous, needed when nnodes > 1
    rdzv_id: str | None = None  # the same on every node (default: the job id)
    max_restarts: int = 0  # torchrun restarts the whole group on a worker failure; the recipe resumes
    python: str = sys.executable
    entry: str = "mixforge.train.entry"  # the module each rank runs with the config path (`python -m`)

    kind = "torchrun"

    def __post_init__(self) -> None:
        problems = []
        if self.nproc_per_node < 1 or self.nnodes < 1:
            problems.append(f"nproc_per_node ({self.nproc_per_node}) and nnodes ({self.nnodes}) must be >= 1")
        if self.strategy not in ("ddp", "fsdp"):
            problems.append(f"strategy: {self.strategy!r} is not 'ddp' or 'fsdp'")
        elif self.strategy == "fsdp":
            problems.append(FSDP_UNSUPPORTED)
        if self.nnodes > 1 and not self.rdzv_endpoint:
            problems.append(f"nnodes={self.nnodes} needs rdzv_endpoint='HOST:PORT' (a node every rank can reach)")
        if problems:
            raise ConfigError(problems)

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    def command(self, config_path: Path, job_id: str = "mixforge") -> list[str]:
        argv = [self.python, "-m", "torch.distributed.run", f"--nnodes={self.nnodes}",
                f"--nproc_per_node={self.nproc_per_node}", f"--max_restarts={self.max_restarts}"]
        if self.nnodes == 1 and not self.rdzv_endpoint:
            argv.append("--standalone")  # a local rendezvous on a free port
        else:
            argv += ["--rdzv_backend=c10d", f"--rdzv_endpoint={self.rdzv_endpoint}", f"--rdzv_id={self.rdzv_id or job_id}"]
        return [*argv, "-m", self.entry, str(config_path)]

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    def launch(self, cfg: RunConfig, *, job_id: str | None = None) -> Job:
        """Check that the global batch splits over the ranks, then start torchrun; returns the job at once."""
        o = cfg.overrides
        if o.mix_unit == "examples" and o.global_batch_size % self.world_size:
            raise ConfigError(f"overrides.global_batch_size ({o.global_batch_size}) must be a multiple of the "
                              f"world size ({self.world_size}): each rank takes an equal share of every step")
        from mixforge.runtime.jobs import new_job_id

        job_id = job_id or new_job_id()
        return start_process(cfg, kind=self.kind, spec=self.spec(), job_id=job_id,
                             command=lambda path: self.command(path, job_id))


def from_spec(spec: dict[str, Any]) -> TorchrunRuntime:
    return TorchrunRuntime(**{k: v for k, v in spec.items() if k != "kind"})
