"""`mixforge jobs list|status|logs|stop|resume`: the registered training jobs (MIXFORGE_HOME/jobs.db)."""

from __future__ import annotations

import time

import typer

app = typer.Typer(help="Training jobs: list, watch, stop and resume runs launched on any runtime.",
                  no_args_is_help=True)

_STYLE = {"queued": "yellow", "running": "cyan", "succeeded": "green", "failed": "red", "stopped": "magenta"}


def _when(ts: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return time.strftime(fmt, time.localtime(ts)) if ts else "-"


def _status(status: str) -> str:
    return f"[{_STYLE.get(status, 'white')}]{status}[/]"


@app.command("list")
def list_(limit: int = typer.Option(20, help="Newest jobs shown.")) -> None:
    """List jobs, newest first, with a fresh status (`mixforge jobs status ID` shows paths and messages)."""
    from rich.console import Console
    from rich.table import Table

    from mixforge.runtime.jobs import list_jobs

    table = Table()
    for column in ("id", "runtime", "status", "started", "ended"):
        table.add_column(column, no_wrap=True)
    table.add_column("name", overflow="fold")
    for job in list_jobs(limit):
        r = job.record
        table.add_row(r.id, r.runtime, _status(r.status), _when(r.started_at, "%m-%d %H:%M"),
                      _when(r.ended_at, "%m-%d %H:%M"), r.name)
    Console().print(table)


@app.command("status")
def status(job_id: str = typer.Argument(..., help="A job id (a unique prefix is enough).")) -> None:
    """Show one job: status, times, paths, MLflow run, and why it failed."""
    from rich.console import Console
    from rich.markup import escape

    from mixforge.runtime.jobs import get_job

    r = get_job(job_id).record
    console = Console(soft_wrap=True)
    rows = [("id", r.id), ("name", r.name), ("runtime", r.runtime), ("status", _status(r.status)),
            ("attempts", str(r.attempts)), ("created", _when(r.created_at)), ("started", _when(r.started_at)),
            ("ended", _when(r.ended_at)), ("output", r.output_path), ("log", r.log_path or "-"),
            ("mlflow run", r.mlflow_run_id or "-")]
    if r.pid:
        rows.append(("pid", str(r.pid)))
    if r.external_id:
        rows.append(("engine id", r.external_id))
    if r.manifest_path:
        rows.append(("manifest", r.manifest_path))
    for key, value in rows:
        console.print(f"[bold]{key:>10}[/]  {value if key == 'status' else escape(value)}", highlight=False)
    if r.message:
        console.print(f"[bold]{'message':>10}[/]\n{escape(r.message)}", highlight=False)


@app.command("logs")
def logs(
    job_id: str = typer.Argument(..., help="A job id (a unique prefix is enough)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until the job ends."),
    lines: int = typer.Option(40, "--lines", "-n", help="Last lines shown (without --follow)."),
) -> None:
    """Print a job's log (the last lines, or follow it)."""
    import sys

    from mixforge.runtime.jobs import get_job

    job = get_job(job_id)
    if not follow:
        typer.echo(job.logs(lines))
        return
    for chunk in job.follow():
        sys.stdout.write(chunk)
        sys.stdout.flush()


@app.command("stop")
def stop(job_id: str = typer.Argument(..., help="A job id (a unique prefix is enough).")) -> None:
    """Stop a job cleanly: it saves a checkpoint, then exits (`resume` continues it). For a job that has ended,
    end the processes it left behind (torchrun workers of a killed launcher)."""
    from mixforge.runtime.jobs import get_job

    job = get_job(job_id)
    if not job.record.active:
        killed = job.kill_leftovers()
        typer.echo(f"job {job.id} is {job.record.status} already"
                   + (f"; killed {killed} leftover process(es) still running its config" if killed else ""))
        return
    job.stop()
    typer.echo(f"asked job {job.id} to stop (checkpoint, then exit); `mixforge jobs status {job.id}` shows when it has")


@app.command("resume")
def resume(job_id: str = typer.Argument(..., help="A job id (a unique prefix is enough).")) -> None:
    """Launch a stopped or failed job again on its runtime; it continues from its newest checkpoint."""
    from mixforge.runtime.jobs import resume_job

    job = resume_job(job_id)
    r = job.record
    typer.echo(f"resumed job {r.id} (attempt {r.attempts}) on {r.runtime}; log: {r.log_path or r.manifest_path}")
