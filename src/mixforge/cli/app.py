"""`mixforge` entry point: registers the command groups and holds the one error boundary.

Known errors (MixforgeError) become one red line plus a hint and exit code 1; `MIXFORGE_DEBUG=1` shows the
traceback instead. Command modules import heavy libraries inside their functions, so `--help` stays fast.
"""

from __future__ import annotations

import os
import sys

import typer

from mixforge.cli import data as data_cli
from mixforge.cli import eval as eval_cli
from mixforge.cli import jobs as jobs_cli
from mixforge.cli import mix as mix_cli
from mixforge.cli import models as models_cli
from mixforge.cli import quickstart as quickstart_cli
from mixforge.cli import replay as replay_cli
from mixforge.cli import train as train_cli

app = typer.Typer(
    name="mixforge",
    help="Customize open-weight LLMs on your domain data without losing their general skills.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models_cli.app, name="models")
app.add_typer(data_cli.app, name="data")
app.add_typer(mix_cli.app, name="mix")
app.add_typer(jobs_cli.app, name="jobs")
app.add_typer(replay_cli.app, name="replay")
app.command("quickstart")(quickstart_cli.quickstart)
app.command("train")(train_cli.train)
app.command("merge")(train_cli.merge)
eval_cli.register(app)  # eval, report, generate, chat
# each issue's command group registers itself here: data, mix, train, eval, jobs ...


@app.command()
def version() -> None:
    """Print mixforge's version."""
    from mixforge import __version__

    typer.echo(__version__)


def main() -> None:
    from mixforge.errors import MixforgeError

    try:
        app(standalone_mode=False)
    except MixforgeError as exc:
        if os.environ.get("MIXFORGE_DEBUG") == "1":
            raise
        from rich.console import Console

        err = Console(stderr=True)
        from rich.markup import escape  # messages hold brackets ('mixforge[vllm]', '[/INST]'): not markup

        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
        if getattr(exc, "hint", None):
            err.print(f"[yellow]hint:[/] {escape(str(exc.hint))}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors and aborts arrive here in standalone_mode=False
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
