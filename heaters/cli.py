"""`heaters`: the command line for admins and scripts (typer)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from heaters.errors import HeatersError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Heaters: long videos in, reviewed clips out."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")
users_app = typer.Typer(no_args_is_help=True, help="Reviewer and admin accounts.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from heaters import migrations
    from heaters.settings import get_settings

    migrations.upgrade(get_settings().sqlalchemy_url, revision)
    console.print(f"Database upgraded to {revision}.")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")] = "-1",
) -> None:
    """Revert migrations down to REVISION (default: one step)."""
    from heaters import migrations
    from heaters.settings import get_settings

    migrations.downgrade(get_settings().sqlalchemy_url, revision)
    console.print(f"Database downgraded to {revision}.")


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="Username: letters, digits, '.', '_' or '-'.")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the user the admin role.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create a reviewer (or, with --admin, an admin)."""
    from heaters.auth.service import create_user
    from heaters.db import unit_of_work
    from heaters.models import Role

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with unit_of_work() as session:
        user = create_user(session, name, password, role=Role.ADMIN if admin else Role.REVIEWER)
        console.print(f"Created {user.role} {user.username!r}.")


@app.command()
def doctor() -> None:
    """Check every dependency the app needs and print a table; exit 1 if any is not ready."""
    from heaters.adapters import get_redis, get_storage
    from heaters.db import get_engine
    from heaters.health import readiness

    results = readiness(get_engine(), get_redis(), get_storage())
    table = Table(title="Heaters readiness")
    for column in ("check", "status", "detail", "ms"):
        table.add_column(column)
    for result in results:
        status = "[green]ok[/green]" if result.ok else "[red]FAIL[/red]"
        table.add_row(result.name, status, result.detail, f"{result.elapsed_ms:.0f}")
    console.print(table)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def web(port: Annotated[int | None, typer.Option(help="Port (default: PORT or 3000).")] = None) -> None:
    """Serve the web app (frontend, API and websocket) on one port in production mode."""
    from heaters.webserver import exec_web

    exec_web(port)


@app.command()
def worker() -> None:
    """Consume the queues named in WORKER_QUEUES (all when unset), each with its own concurrency."""
    from heaters_workers.process import run_workers

    raise typer.Exit(run_workers())


@app.command()
def scheduler() -> None:
    """Run the schedule (Dispatcher every minute, playback cleanup every few hours)."""
    from heaters.settings import get_settings

    get_settings()  # fail here, with a clear message, on bad configuration
    periodiq = str(Path(sys.executable).with_name("periodiq"))
    os.execv(periodiq, [periodiq, "heaters_workers.run:broker"])


def main() -> None:
    """Entry point: a HeatersError becomes one clear sentence and exit status 1, not a traceback."""
    try:
        app(standalone_mode=False)
    except HeatersError as error:
        err_console.print(f"[red]error:[/red] {error}")
        sys.exit(1)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        err_console.print("Aborted.")
        sys.exit(130)
    except Exception as error:
        import click
        from sqlalchemy.exc import OperationalError

        if isinstance(error, click.ClickException):  # usage errors, in non-standalone mode
            error.show()
            sys.exit(error.exit_code)
        if isinstance(error, OperationalError):
            err_console.print(f"[red]error:[/red] cannot reach the database: {error.orig}".splitlines()[0])
            sys.exit(1)
        raise
