"""Fine-tune and evaluate several independent runs side by side, one process each, on this machine's cores.

    finished = run_side_by_side(jobs, workers=None, show=True)   # [Finished(name, run, evaluation), ...]

A job is a RunConfig plus the evaluation tasks for its final model. With one worker the jobs run one after
another in this process. With several, each job runs in a fresh spawned process (`multiprocessing` "spawn": a
forked copy of a process that already ran torch's thread pool can hang) with `threads` torch threads, and the
parent shows one progress bar per job, read from the step column of the run's own `metrics.jsonl`.

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


def cores() -> int:
    """CPU cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_workers(jobs: int, workers: int | None = None, *, available: int | None = None) -> tuple[int, int]:
    """(processes, torch threads per process) for `jobs` jobs. `workers` None: automatic (1 on a single
    core, else min(jobs, cores + 1)); 1: one after another in this process, with its current threads."""
    available = available or cores()
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


def _child(job: Job, threads: int, conn) -> None:
    """A spawned process: `threads` torch threads, then the job; sends ("ok", Finished) or ("error", text)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        import torch

        torch.set_num_threads(threads)
        conn.send(("ok", _fine_tune_and_evaluate(job, show=False, threads=threads)))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which raises
        import traceback

        conn.send(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _in_processes(jobs: Sequence[Job], *, processes: int, threads: int, show: bool) -> list[Finished]:
    """At most `processes` jobs at a time, each in a fresh spawned (non-daemonic: a job may start its own
    workers, e.g. the token store's) process."""
    import multiprocessing

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    ctx = multiprocessing.get_context("spawn")
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        disable=not show)
    bars = {job.name: progress.add_task(f"{job.name}: waiting", total=job.config.overrides.max_steps)
            for job in jobs}
    waiting = list(jobs)
    running: dict[str, tuple[Job, Any, Any]] = {}  # name -> (job, process, parent end of its pipe)
    done: dict[str, Finished] = {}
    try:
        with progress:
            while len(done) < len(jobs):
                while waiting and len(running) < processes:
                    job = waiting.pop(0)
                    parent_end, child_end = ctx.Pipe(duplex=False)
                    process = ctx.Process(target=_child, args=(job, threads, child_end), name=f"mixforge-{job.name}")
                    process.start()
                    child_end.close()
                    running[job.name] = (job, process, parent_end)
                for name, (job, process, conn) in list(running.items()):
                    if conn.poll():
                        try:
                            status, payload = conn.recv()
                        except EOFError:  # it closed its end without a word: it died
                            status, payload = "error", f"its process died (exit code {process.join() or process.exitcode})"
                        process.join()
                        del running[name]
                        if status != "ok":
                            raise RuntimeError(f"run {name} failed: {payload}")
                        done[name] = payload
                        progress.update(bars[name], description=f"{name}: done", completed=job.config.overrides.max_steps)
                    elif not process.is_alive():
                        raise RuntimeError(f"run {name}: its process died (exit code {process.exitcode}) without a "
                                           f"result; see {job.config.output_path}")
                    else:
                        step = last_step(Path(job.config.output_path) / "metrics.jsonl")
                        progress.update(bars[name], completed=step or 0,
                                        description=f"{name}: {'training' if step else 'starting'}")
                time.sleep(0.5)
    except KeyboardInterrupt:  # the workers got the Ctrl-C too: give them a moment to checkpoint and stop
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(p.is_alive() for _, p, _ in running.values()):
            time.sleep(0.5)
        raise
    finally:
        for _, process, conn in running.values():  # a failure elsewhere: the other jobs stop now
            if process.is_alive():
                process.terminate()
            process.join()
            conn.close()
    return [done[job.name] for job in jobs]


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
