"""Runtimes: where a training run executes. Each one builds a launch of the same entry point
(`python -m mixforge.train.entry RUN_CONFIG.json`) on an existing engine and returns a watchable job
(`mixforge.runtime.jobs.Job`), registered in the job registry.

    LocalRuntime()                                  one process on this machine (the default)
    TorchrunRuntime(nproc_per_node=8)               torch.distributed.run: DDP over local processes
    RayRuntime(address="auto", num_workers=16)      Ray Train's TorchTrainer (extra: mixforge[ray])
    KubernetesRuntime(image=..., nodes=4)           a Kubeflow PyTorchJob, submitted with kubectl
    SlurmRuntime(nodes=4, gpus_per_node=8)          an sbatch script running torchrun on each node
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from mixforge.runtime import jobs  # noqa: F401 - `mixforge.jobs` is this module
from mixforge.runtime.jobs import BACKENDS

# the class names users may write as `runtime: {kind: ...}` in a run config, besides the short kinds
_CLASS_KINDS = {"LocalRuntime": "local", "TorchrunRuntime": "torchrun", "RayRuntime": "ray",
                "KubernetesRuntime": "kubernetes", "SlurmRuntime": "slurm"}


def runtime_from_spec(spec: dict[str, Any] | None) -> Any:
    """The runtime a config's `runtime:` section names, e.g. {"kind": "torchrun", "nproc_per_node": 2}."""
    from mixforge.errors import ConfigError

    spec = dict(spec or {"kind": "local"})
    kind = _CLASS_KINDS.get(spec.get("kind", "local"), spec.get("kind", "local"))
    if kind not in BACKENDS:
        raise ConfigError(f"runtime.kind: {kind!r} is not one of {', '.join(BACKENDS)}")
    try:
        return import_module(BACKENDS[kind]).from_spec({**spec, "kind": kind})
    except TypeError as exc:
        raise ConfigError(f"runtime: {exc}") from None
