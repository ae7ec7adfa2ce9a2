"""Fine-tune and evaluate several independent runs side by side, one process each, on this machine's cores.

    finished = run_side_by_side(jobs, workers=None, show=True)   # [Finished(name, run, evaluation), ...]

A job is a RunConfig plus the evaluation tasks for its final model. With one worker the jobs run one after
another in this process. With several, each job runs in a fresh interpreter (`python -m mixforge.side_by_side`: not a
fork, since a forked copy of a process that already ran torch's thread pool can hang, and not multiprocessing's
spawn, which re-runs the caller's unguarded script) with `threads` torch threads; the parent shows one progress
bar per job, read from the step column of the run's own `metrics.jsonl`, and a failed job's log tail.

Why processes rather than more threads: a small model's step is a string of small matrix products that two
threads share badly (a 2M-parameter step ran 1.68x faster on 2 threads than on 1, so 84% efficiency), and a
thread pool of 2 on a machine that has other work stalls (see FACTS.md, "threads under load"). Three
one-thread processes on 2 cores keep both cores busy for the whole time. `plan_workers` picks the count:
as many processes as jobs, up to cores + 1 (3 jobs on 2 cores run at once rather than 2 then 1 alone), and
cores // processes threads each.

Each job's result depends only on its config and its thread count, not on which jobs run beside it. A job that
fails stops the others and raises, naming the job; Ctrl-C reaches every worker, which stop as `mixforge train`
does (checkpoint, status "stopped").
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixforge.machine import usable_cpus

if TYPE_CHECKING:
    from mixforge.config import RunConfig
    from mixforge.eval.tasks import EvalTask


@dataclass(frozen=True)
class Job:
    name: str
    config: RunConfig
    tasks: tuple[EvalTask, ...]  # evaluated on the final model
    cache_dir: str  # the evaluation cache


@dataclass(frozen=True)
class Finished:
    name: str
    run: Any  # mixforge.train.recipe.RunResult
    evaluation: Any  # mixforge.eval.evaluator.EvalResult
    threads: int  # torch threads the job trained with (its numbers depend on it, in the last bits)


def plan_workers(jobs: int, workers: int | None = None, *, available: int | None = None) -> tuple[int, int]:
    """(processes, torch threads per process) for `jobs` jobs. `workers` None: automatic (1 on a single
    core, else min(jobs, cores + 1)); 1: one after another in this process, with its current threads."""
    available = available or usable_cpus()
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers is None:
        workers = 1 if available < 2 else min(jobs, available + 1)
    workers = max(1, min(workers, jobs))
    if workers == 1:
        import torch

        return 1, torch.get_num_threads()
    return workers, max(1, available // workers)


def run_side_by_side(jobs: Sequence[Job], *, workers: int | None = None, show: bool = True,
                     console=None) -> list[Finished]:
    """Run every job (fine-tune, then evaluate its final model); results in the jobs' order."""
    processes, threads = plan_workers(len(jobs), workers)
    if processes == 1:
        return [_fine_tune_and_evaluate(job, show=show, threads=threads) for job in jobs]
    if console is not None and show:
        console.print(f"{len(jobs)} runs side by side: {processes} processes x {threads} torch thread(s)")
    return _in_processes(jobs, processes=processes, threads=threads, show=show)


def _fine_tune_and_evaluate(job: Job, *, show: bool, threads: int) -> Finished:
    from mixforge.eval.evaluator import evaluate
    from mixforge.train.recipe import run

    result = run(job.config, show_progress=show)
    if result.status != "succeeded":
        raise RuntimeError(f"run {job.name} ended {result.status}")
    evaluation = evaluate(result.final_path, job.tasks, cache_dir=job.cache_dir, show_progress=show)
    return Finished(job.name, result, evaluation, threads)


def _in_processes(jobs: Sequence[Job], *, processes: int, threads: int, show: bool) -> list[Finished]:
    """At most `processes` jobs at a time, each in a fresh interpreter (`python -m mixforge.side_by_side JOB`):
    not multiprocessing's spawn, which re-runs the caller's script in every child (a script without an
    `if __name__ == "__main__"` guard would start the quickstart again in each)."""
    import pickle
    import subprocess
    import sys
    import tempfile

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false"}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        disable=not show)
    bars = {job.name: progress.add_task(f"{job.name}: waiting", total=job.config.overrides.max_steps)
            for job in jobs}
    waiting = list(enumerate(jobs))
    running: dict[str, tuple[Job, subprocess.Popen, Path]] = {}  # name -> (job, process, its folder)
    done: dict[str, Finished] = {}
    with tempfile.TemporaryDirectory(prefix="mixforge-side-by-side-") as tmp:
        try:
            with progress:
                while len(done) < len(jobs):
                    while waiting and len(running) < processes:
                        index, job = waiting.pop(0)
                        folder = Path(tmp) / str(index)
                        folder.mkdir()
                        (folder / "job.pkl").write_bytes(pickle.dumps((job, threads)))
                        with (folder / "log.txt").open("wb") as log:
                            process = subprocess.Popen([sys.executable, "-m", "mixforge.side_by_side", str(folder)],
                                                       env=env, stdout=log, stderr=subprocess.STDOUT,
                                                       stdin=subprocess.DEVNULL)
                        running[job.name] = (job, process, folder)
                    for name, (job, process, folder) in list(running.items()):
                        if process.poll() is None:
                            step = last_step(Path(job.config.output_path) / "metrics.jsonl")
                            progress.update(bars[name], completed=step or 0,
                                            description=f"{name}: {'training' if step else 'starting'}")
                            continue
                        del running[name]
                        result = folder / "result.pkl"
                        if process.returncode != 0 or not result.is_file():
                            tail = (folder / "log.txt").read_text(errors="replace")[-3000:]
                            raise RuntimeError(f"run {name} failed (exit code {process.returncode}):\n{tail}")
                        done[name] = pickle.loads(result.read_bytes())
                        progress.update(bars[name], description=f"{name}: done",
                                        completed=job.config.overrides.max_steps)
                    time.sleep(0.5)
        except KeyboardInterrupt:  # the workers got the Ctrl-C too: give them a moment to checkpoint and stop
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(p.poll() is None for _, p, _ in running.values()):
                time.sleep(0.5)
            raise
        finally:
            for _, process, _ in running.values():  # a failure elsewhere: the other jobs stop now
                if process.poll() is None:
                    process.terminate()
                process.wait()
    return [done[job.name] for job in jobs]


def _main(folder: str) -> None:
    """A worker: run the pickled job, write its Finished as result.pkl (atomically); a failure exits non-zero."""
    import pickle

    import torch

    job, threads = pickle.loads((Path(folder) / "job.pkl").read_bytes())
    torch.set_num_threads(threads)
    finished = _fine_tune_and_evaluate(job, show=False, threads=threads)
    partial = Path(folder) / "result.pkl.partial"
    partial.write_bytes(pickle.dumps(finished))
    partial.replace(Path(folder) / "result.pkl")


def last_step(metrics_file: Path) -> int | None:
    """The last step a run logged (its metrics.jsonl's last complete line), None before the first."""
    try:
        with metrics_file.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue  # a line being written, or the partial first line of the tail
    return None


if __name__ == "__main__":  # run as a script, this file is `__main__`: results must pickle as the real module's
    import sys

    from mixforge.side_by_side import _main as worker_main

    worker_main(sys.argv[1])
