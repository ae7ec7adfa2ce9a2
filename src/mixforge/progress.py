"""The one progress display of every long step (preparing data, training, evaluating, generating).

    with progress_bar(show) as bar:                     # or bar.start() ... bar.stop()
        job = bar.add_task("generate", total=len(prompts))
        bar.advance(job, 8)

A rich `Progress` with description, bar, done/total, elapsed and remaining time; nothing is drawn when `show`
is false. It never redirects stdout or stderr: transformers' own tqdm bars write to stderr, and inside
Jupyter a redirected stream feeding rich's live display recurses without end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress


def progress_bar(show: bool = True, *, transient: bool = True) -> Progress:
    """A progress display, not started (`with` starts and stops it); `transient` clears it when done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), disable=not show, transient=transient,
                    redirect_stdout=False, redirect_stderr=False)
