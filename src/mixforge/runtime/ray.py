"""RayRuntime: Ray Train's TorchTrainer runs the same entry point in every worker (optional extra: mixforge[ray]).

The Ray driver itself runs as a local background process (`python -m mixforge.runtime.ray RUN_CONFIG.json ...`),
so `launch` returns at once and the job is watched like a LocalRuntime job: running while the driver lives, then
what `result.json` (written by rank 0) says. Ray Train sets up the process group (gloo on CPUs, NCCL on GPUs);
each worker gets RANK / WORLD_SIZE / LOCAL_RANK from Ray's train context and calls
`mixforge.train.entry.main`, so the recipe, the mixer's per-rank shares and the checkpoints are the same as
under torchrun. The output folder must be storage that every worker node sees.

Stop: Ray runs the training function in a worker thread, where no signal handler can be installed, so a stop
is a hard one (SIGTERM to the driver ends the workers); the job shows `stopped` and resume continues from the
newest periodic checkpoint (set `save_every`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mixforge.config import RayRuntime, RunConfig
from mixforge.errors import ConfigError
from mixforge.runtime.jobs import Job
from mixforge.runtime.local import kill_leftovers, logs, poll, start_process, stop  # noqa: F401 - this kind's watch functions

__all__ = ["RayRuntime", "command", "launch", "main", "require_ray", "train_worker"]

INSTALL_HINT = "pip install 'mixforge[ray]' (ray[train]==2.60.0)"


def command(runtime: RayRuntime, config_path: Path | str) -> list[str]:
    """The Ray driver's command line (it runs as a local background process)."""
    argv = [runtime.python, "-m", "mixforge.runtime.ray", str(config_path), f"--num-workers={runtime.num_workers}",
            f"--cpus-per-worker={runtime.cpus_per_worker}"]
    if runtime.address:
        argv.append(f"--address={runtime.address}")
    if runtime.use_gpu:
        argv.append("--use-gpu")
    return argv


def launch(cfg: RunConfig, runtime: RayRuntime, *, job_id: str | None = None) -> Job:
    """Check that Ray is installed and the global batch splits over the workers, then start the driver."""
    require_ray()
    o = cfg.overrides
    if o.mix_unit == "examples" and o.global_batch_size % runtime.num_workers:
        raise ConfigError(f"overrides.global_batch_size ({o.global_batch_size}) must be a multiple of "
                          f"num_workers ({runtime.num_workers}): each worker takes an equal share of every step")
    return start_process(cfg, runtime, command=lambda path: command(runtime, path), job_id=job_id)


def require_ray() -> None:
    """Fail in the caller, before anything starts, when Ray is missing (without importing it: that takes 5 s)."""
    from importlib.util import find_spec

    if find_spec("ray") is None:
        raise ImportError(f"RayRuntime needs Ray Train: {INSTALL_HINT}")


# ---------------------------------------------------------------------------------------------------------
# the driver (runs in the background process) and the function every worker runs
# ---------------------------------------------------------------------------------------------------------
def train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: expose Ray's ranks the way torchrun does, then run the entry point."""
    import os

    import ray.train

    ctx = ray.train.get_context()
    os.environ.update(RANK=str(ctx.get_world_rank()), WORLD_SIZE=str(ctx.get_world_size()),
                      LOCAL_RANK=str(ctx.get_local_rank()))
    from mixforge.train.entry import main as entry

    code = entry([config["config_path"]])
    if code != 0:
        raise RuntimeError(f"the training entry point exited with status {code}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixforge.runtime.ray")
    parser.add_argument("config_path")
    parser.add_argument("--address", default=None)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--use-gpu", action="store_true")
    args = parser.parse_args(argv)

    import ray
    from ray.train import RunConfig as RayRunConfig
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    config_path = str(Path(args.config_path).resolve())
    out = Path(config_path).parent
    ray.init(address=args.address, include_dashboard=False, log_to_driver=True)
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"config_path": config_path},
        scaling_config=ScalingConfig(num_workers=args.num_workers, use_gpu=args.use_gpu,
                                     resources_per_worker={"CPU": args.cpus_per_worker}),
        run_config=RayRunConfig(name="ray", storage_path=str(out)),
    )
    trainer.fit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
