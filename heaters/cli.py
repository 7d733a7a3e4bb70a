"""`heaters`: the command line for admins and scripts (typer)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from heaters.errors import HeatersError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Heaters: long videos in, reviewed clips out.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")
users_app = typer.Typer(no_args_is_help=True, help="Reviewer and admin accounts.")
videos_app = typer.Typer(no_args_is_help=True, help="Ingested videos and their clips.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
clips_app = typer.Typer(no_args_is_help=True, help="Clips after review: exported, keyframed, embedded.")
app.add_typer(videos_app, name="videos")
app.add_typer(clips_app, name="clips")
jobs_app = typer.Typer(no_args_is_help=True, help="Queues, workers, running and failed work, the schedule.")
app.add_typer(jobs_app, name="jobs")
cache_app = typer.Typer(no_args_is_help=True, help="The playback cache (temp clips).")
app.add_typer(cache_app, name="cache")

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
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
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


@users_app.command("deactivate")
def users_deactivate(name: Annotated[str, typer.Argument(help="Username.")]) -> None:
    """End an account: its sessions stop at their next request (never the last active admin)."""
    from heaters.auth.service import set_active
    from heaters.db import unit_of_work

    with unit_of_work() as session:
        user = set_active(session, name, False)
        console.print(f"Deactivated {user.username!r}.")


@users_app.command("activate")
def users_activate(name: Annotated[str, typer.Argument(help="Username.")]) -> None:
    """Let a deactivated account sign in again."""
    from heaters.auth.service import set_active
    from heaters.db import unit_of_work

    with unit_of_work() as session:
        user = set_active(session, name, True)
        console.print(f"Activated {user.username!r}.")


@users_app.command("password")
def users_password(
    name: Annotated[str, typer.Argument(help="Username.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Set a new password."""
    from heaters.auth.service import set_password
    from heaters.db import unit_of_work

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with unit_of_work() as session:
        user = set_password(session, name, password)
        console.print(f"Set a new password for {user.username!r}.")


def _use_broker() -> None:
    """Messages from this process go to the configured Redis (they leave after each commit)."""
    from heaters.settings import get_settings
    from heaters_workers.broker import setup_broker

    setup_broker(get_settings().redis_url)


def _print_json(data: object) -> None:
    import json

    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="An http(s) URL (yt-dlp) or a video file.")],
    title: Annotated[str | None, typer.Option(help="Title (default: from yt-dlp or the file name).")] = None,
) -> None:
    """Ingest a video; prints its id (an existing video's id when it was ingested before)."""
    from heaters.adapters import get_storage
    from heaters.db import unit_of_work
    from heaters.videos.ingest import ingest_file, ingest_url

    _use_broker()
    path = Path(source)
    with unit_of_work() as session:
        if path.exists():
            result = ingest_file(session, get_storage(), path, title=title)
        elif source.startswith(("http://", "https://")):
            result = ingest_url(session, source, title=title)
        else:
            raise HeatersError(f"{source!r} is neither an existing file nor an http(s) URL.")
    if not result.created:
        err_console.print(f"Already ingested as video {result.video_id}.")
    typer.echo(result.video_id)


@app.command()
def demo() -> None:
    """Make a one-minute demo video with a dozen hard cuts (FFmpeg) and ingest it."""
    import tempfile

    from heaters.adapters import get_storage
    from heaters.db import unit_of_work
    from heaters.media.demo import make_demo_video
    from heaters.settings import get_settings
    from heaters.videos.ingest import ingest_file

    _use_broker()
    with tempfile.TemporaryDirectory(prefix="heaters-demo-") as tmp:
        with console.status("Rendering the demo video with FFmpeg..."):
            made = make_demo_video(Path(tmp) / "heaters-demo.mp4", timeout=get_settings().ffmpeg_timeout_seconds)
        with unit_of_work() as session:
            result = ingest_file(session, get_storage(), made.path, title="Heaters demo")
    typer.echo(result.video_id)


@app.command()
def retry(video_id: Annotated[int, typer.Argument(help="The failed video's id.")]) -> None:
    """Resume a failed video from the start of the stage that failed, with fresh attempts."""
    from heaters.db import unit_of_work
    from heaters.pipeline.dispatch import schedule
    from heaters.videos import service

    _use_broker()
    with unit_of_work() as session:
        stage = service.retry(session, video_id)
        schedule(session, stage, video_id)
    console.print(f"Video {video_id}: {stage.key} queued again.")


@app.command()
def dispatch() -> None:
    """Run one Dispatcher sweep now (the scheduler does this every minute)."""
    from heaters.db import unit_of_work
    from heaters.pipeline.dispatch import sweep

    _use_broker()
    with unit_of_work() as session:
        sent = sweep(session)
    _print_json(sent)


@videos_app.command("list")
def videos_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every video with its state, progress, error and clips."""
    from heaters.db import unit_of_work
    from heaters.videos.repository import list_videos

    with unit_of_work() as session:
        videos = list_videos(session)
    if as_json:
        _print_json(videos)
        return
    table = Table(title="Videos")
    for column in ("id", "title", "state", "progress", "clips", "error"):
        table.add_column(column)
    for v in videos:
        progress = f"{v['progress']:.0f}%" if v["progress"] is not None else ""
        table.add_row(str(v["id"]), v["title"], v["state"], progress, str(len(v["clips"])), v["last_error"] or "")
    console.print(table)


@videos_app.command("show")
def videos_show(
    video_id: Annotated[int, typer.Argument(help="Video id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One video in full, with its clips."""
    from heaters.db import unit_of_work
    from heaters.videos.repository import show_video

    with unit_of_work() as session:
        video = show_video(session, video_id)
    if as_json:
        _print_json(video)
        return
    for key, value in video.items():
        if key != "clips":
            console.print(f"[bold]{key}[/bold]: {value}")
    console.print(f"[bold]clips[/bold]: {len(video['clips'])}")
    for clip in video["clips"]:
        console.print(
            f"  {clip['id']:>6}  {clip['identifier']:<28} [{clip['start_frame']}, {clip['end_frame']})  {clip['state']}"
        )


@clips_app.command("list")
def clips_list(
    video: Annotated[int | None, typer.Option(help="Only this video's clips.")] = None,
    state: Annotated[str | None, typer.Option(help="Only clips in this state (e.g. exported, export_failed).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Clips past review: their video, frames, group, state and error."""
    from heaters.clips.repository import PAST_REVIEW, list_past_review
    from heaters.db import unit_of_work
    from heaters.models import ClipState

    allowed = [s.value for s in PAST_REVIEW]
    if state is not None and state not in allowed:
        raise HeatersError(f"--state {state!r} is not a state after review; use one of: {', '.join(allowed)}")
    with unit_of_work() as session:
        clips = list_past_review(session, video_id=video, state=ClipState(state) if state else None, limit=limit)
    if as_json:
        _print_json(clips)
        return
    table = Table(title="Clips")
    for column in ("id", "video", "frames", "group", "state", "key", "error"):
        table.add_column(column)
    for c in clips:
        frames = f"[{c['start_frame']}, {c['end_frame']})"
        group = str(c["grouped_with"] or "")
        table.add_row(
            str(c["id"]), c["video_title"] or "", frames, group, c["state"], c["key"] or "", c["last_error"] or ""
        )
    console.print(table)


@clips_app.command("show")
def clips_show(
    clip_id: Annotated[int, typer.Argument(help="Clip id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One clip in full: its file, its group, keyframes, embedding variants and stage jobs."""
    from heaters.clips.repository import show_clip
    from heaters.db import unit_of_work

    with unit_of_work() as session:
        clip = show_clip(session, clip_id)
    if as_json:
        _print_json(clip)
        return
    for key, value in clip.items():
        if key not in {"keyframes", "embeddings", "jobs"}:
            console.print(f"[bold]{key}[/bold]: {value}")
    group = f"with clip {clip['grouped_with']}" if clip["grouped_with"] else "none"
    console.print(f"[bold]group[/bold]: {group}")
    for frame in clip["keyframes"]:
        console.print(f"  keyframe {frame['strategy']} #{frame['position']}: frame {frame['frame']}  {frame['key']}")
    for variant in clip["embeddings"]:
        console.print(f"  embedding {variant['model']} / {variant['strategy']} ({variant['dim']}-d)")
    for job in clip["jobs"]:
        console.print(
            f"  job {job['stage']}: {job['state']} after {job['attempts']} attempt(s) {job['last_error'] or ''}"
        )


@clips_app.command("retry")
def clips_retry(clip_id: Annotated[int, typer.Argument(help="The failed clip's id.")]) -> None:
    """Resume a failed clip (export, keyframes or embedding) from the start of that stage."""
    from heaters.clips import service
    from heaters.db import unit_of_work
    from heaters.pipeline.dispatch import schedule

    _use_broker()
    with unit_of_work() as session:
        stage = service.retry(session, clip_id)
        schedule(session, stage, clip_id)
    console.print(f"Clip {clip_id}: {stage.key} queued again.")


def _cache(apply: bool, as_json: bool) -> None:
    from heaters.playback import cleanup
    from heaters.settings import get_settings

    results = cleanup.run(get_settings(), apply=apply)
    if as_json:
        _print_json(results)
        return
    for stats in results:
        console.print(f"[bold]{stats['place']}[/bold]")
        for key, value in stats.items():
            if key != "place":
                console.print(f"  {key}: {value}")


@cache_app.command("cleanup")
def cache_cleanup(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Apply the cleanup policy now (the maintenance tick does it every few hours) and print what it did."""
    _cache(True, as_json)


@cache_app.command("stats")
def cache_stats(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """What the cache holds and what a cleanup would evict now, without removing anything."""
    _cache(False, as_json)


def _queue(name: str) -> Any:
    from heaters.queues import queue_named

    return queue_named(name)


@jobs_app.command("list")
def jobs_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """What /admin/jobs shows: queues, workers, running claims, failures, the schedule's ticks."""
    from heaters import job_board
    from heaters.adapters import get_redis
    from heaters.db import unit_of_work
    from heaters.settings import get_settings

    with unit_of_work() as session:
        board = job_board.board(session, get_redis(), get_settings())
    if as_json:
        _print_json(board)
        return
    for section, rows in board.items():
        table = Table(title=section)
        columns = list(rows[0]) if rows else ["(none)"]
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(row[c]) if row[c] is not None else "" for c in columns))
        console.print(table)


@jobs_app.command("retry")
def jobs_retry(
    stage: Annotated[str, typer.Argument(help="The stage, e.g. clip.export or video.encode.")],
    entity_id: Annotated[int, typer.Argument(help="The video or clip id.")],
) -> None:
    """Another go for failed work, with fresh attempts (the same as Retry on the pages)."""
    from heaters import job_board
    from heaters.db import unit_of_work

    _use_broker()
    with unit_of_work() as session:
        again = job_board.retry(session, stage, entity_id)
    console.print(f"{again.key} {entity_id} queued again.")


@jobs_app.command("requeue")
def jobs_requeue(
    queue: Annotated[str, typer.Argument(help="Queue name, e.g. exports.")],
    message_id: Annotated[str | None, typer.Argument(help="One dead letter's id (default: all).")] = None,
) -> None:
    """Send dead-lettered messages back to their queue (`heaters jobs list` shows them)."""
    from heaters import dead_letters
    from heaters.adapters import get_redis

    _use_broker()
    sent = dead_letters.requeue(get_redis(), _queue(queue), message_id)
    console.print(f"{sent} dead-lettered message(s) of {queue} queued again.")


@jobs_app.command("delete")
def jobs_delete(
    queue: Annotated[str, typer.Argument(help="Queue name.")],
    message_id: Annotated[str | None, typer.Argument(help="One dead letter's id.")] = None,
    all_dead: Annotated[bool, typer.Option("--all", help="Every dead letter of the queue.")] = False,
) -> None:
    """Drop dead-lettered messages for good: one by id, or all of a queue's with --all."""
    from heaters import dead_letters
    from heaters.adapters import get_redis

    if (message_id is None) == (not all_dead):
        raise HeatersError("Name one dead letter's id, or pass --all for every dead letter of the queue.")
    dropped = dead_letters.delete(get_redis(), _queue(queue), message_id)
    console.print(f"{dropped} dead-lettered message(s) of {queue} deleted.")


@jobs_app.command("pause")
def jobs_pause(queue: Annotated[str, typer.Argument(help="Queue name, e.g. exports.")]) -> None:
    """Workers of this queue finish what they run and take no new messages (survives restarts)."""
    from heaters import queue_control
    from heaters.adapters import get_redis

    changed = queue_control.pause(get_redis(), _queue(queue))
    console.print(f"Queue {queue} {'paused' if changed else 'was already paused'}.")


@jobs_app.command("resume")
def jobs_resume(queue: Annotated[str, typer.Argument(help="Queue name.")]) -> None:
    """Workers of this queue take messages again."""
    from heaters import queue_control
    from heaters.adapters import get_redis

    changed = queue_control.resume(get_redis(), _queue(queue))
    console.print(f"Queue {queue} {'resumed' if changed else 'was not paused'}.")


@jobs_app.command("paused")
def jobs_paused() -> None:
    """The queues paused now."""
    from heaters import queue_control
    from heaters.adapters import get_redis

    names = sorted(queue_control.paused(get_redis()))
    console.print(", ".join(names) if names else "No queue is paused.")


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
def up() -> None:
    """Run the whole stack in the foreground (what `make run` does); Ctrl-C stops all of it."""
    from heaters.up import run_up

    raise typer.Exit(run_up())


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
        code = app(standalone_mode=False)  # click returns a command's exit code instead of exiting
        sys.exit(code if isinstance(code, int) else 0)
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
