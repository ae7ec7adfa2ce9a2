"""Runtimes: where a training run executes. A runtime is a typed config (`mixforge.config`, the `runtime:`
section of a run config); `launch` starts the same entry point (`python -m mixforge.train.entry
RUN_CONFIG.json`) on its engine and returns a watchable job (`mixforge.runtime.jobs.Job`), registered in the job
registry.

    launch(cfg)                                             on the runtime cfg.runtime names (local by default)
    launch(cfg, TorchrunRuntime(nproc_per_node=8))          torch.distributed.run: DDP over local processes
    launch(cfg, RayRuntime(address="auto", num_workers=16)) Ray Train's TorchTrainer (extra: mixforge[ray])
    launch(cfg, KubernetesRuntime(image=..., nodes=4, output_claim=...))   a Kubeflow PyTorchJob, via kubectl
    launch(cfg, SlurmRuntime(nodes=4, gpus_per_node=8))     an sbatch script running torchrun on each node
"""

from __future__ import annotations

from importlib import import_module

from mixforge.config import (
    KubernetesRuntime,
    LocalRuntime,
    RayRuntime,
    RunConfig,
    Runtime,
    SlurmRuntime,
    TorchrunRuntime,
    parse_runtime,
)
from mixforge.runtime import jobs  # noqa: F401 - `mixforge.jobs` is this module
from mixforge.runtime.jobs import BACKENDS, Job

__all__ = ["KubernetesRuntime", "LocalRuntime", "RayRuntime", "SlurmRuntime", "TorchrunRuntime", "launch",
           "parse_runtime"]


def launch(cfg: RunConfig, runtime: Runtime | None = None, *, job_id: str | None = None) -> Job:
    """Start `cfg` on `runtime` (default: the one `cfg.runtime` names); returns its job handle at once. The
    job's saved config records the runtime it ran on."""
    runtime = cfg.runtime if runtime is None else runtime
    return import_module(BACKENDS[runtime.kind]).launch(cfg, runtime, job_id=job_id)
