"""Review benchmark: simulated reviewers on the real review page, over Reflex's own websocket protocol.

Run:  .venv/bin/python bench/review.py [--reviewers 1,20] [--actions 15] [--think 2.0]

It starts throwaway PostgreSQL (with pg_stat_statements), Redis and S3, one `heaters worker` (media, temp
clips) and one `heaters web`, ingests a generated video with hundreds of hard cuts, and signs in N
reviewers. Each one is a `bench/reflex_client.py` tab on /review: it waits until its current clip is
playable (its temp clip ready), "watches" it for `--think` seconds, presses a key (approve, skip or archive
as the browser's script sends it), and records:

- key press -> next clip shown and playable: the delta that puts the next clip on screen with its temp
  clip ready (the browser has preloaded it by then in its own <video> element);
- key press -> committed: the delta that reports the action done (after the database commit);
- temp clip enqueued -> ready pushed: the page first saw the clip waiting, then got the push that it is
  ready (and, from the database, requested_at -> ready_at);
- database statements per action (pg_stat_statements, by role: web and worker apart);
- the web process's CPU and memory while the reviewers work.

Then one real Chromium tab does the same for 20 key presses, timed inside the page: key press -> the next
clip's <video> shown with a decoded frame (readyState >= 2), and -> its next frame presented.

Baseline in the same run: a plain `ffmpeg` stream copy of the same segments from the same presigned
URL, one after another. Then one upload of a large file through /videos while another tab acts: the
acting tab's round trips during the upload against its round trips without one.

At the end it checks the database: every key press is one review_actions row, no clip was acted on twice,
and no clip was ever in two reviewers' queues. Prints the machine and every figure; appends the result to
bench/out/results.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchmark_video import make_benchmark_video  # noqa: E402
from ingest import machine  # noqa: E402
from reflex_client import ReflexClient, event_name, percentile, state_name, state_path  # noqa: E402

from heaters.auth.tokens import COOKIE_NAME, issue_token  # noqa: E402
from heaters.devstack.postgres import Postgres  # noqa: E402
from heaters.devstack.redis import Redis  # noqa: E402
from heaters.devstack.seaweed import SeaweedS3  # noqa: E402
from heaters.devstack.service import free_port  # noqa: E402
from heaters.media.ffmpeg import stream_copy_args  # noqa: E402
from heaters.supervisor import stop_process_group  # noqa: E402

OUT = ROOT / "bench" / "out"
HEATERS = str(Path(sys.executable).with_name("heaters"))
SECRET = "r" * 48
REVIEW = state_path(state_name("heaters.pages.review.state", "ReviewState"))
COMMAND = event_name(state_name("heaters.pages.review.state", "ReviewState"), handler="command")
VIDEOS_UPLOAD = event_name(state_name("heaters.pages.videos", "VideosState"), handler="upload")
ACTIONS = ("approve", "skip", "archive")
ARRIVAL_SECONDS = 0.5
VERBS = {"approve": "Approved", "skip": "Skipped", "archive": "Archived"}


def var(client: ReflexClient, name: str, default: Any = None) -> Any:
    return client.state.get(REVIEW, {}).get(f"{name}_rx_state_", default)


def current_clip(client: ReflexClient) -> dict[str, Any]:
    return var(client, "current", {}) or {}


def slots(client: ReflexClient) -> list[dict[str, Any]]:
    return var(client, "slots", []) or []


@dataclass
class Metrics:
    shown: list[float] = field(default_factory=list)
    committed: list[float] = field(default_factory=list)
    ready_pushed: list[float] = field(default_factory=list)
    ready_pushed_steady: list[float] = field(default_factory=list)
    waited_for_ready: list[float] = field(default_factory=list)
    refused: int = 0
    pressed: int = 0
    acted: list[int] = field(default_factory=list)
    overlaps: int = 0


class Tab:
    """One reviewer's tab, with the times it first saw each temp clip waiting and then ready."""

    def __init__(self, base: str, cookie: str, path: str = "/review") -> None:
        self.client = ReflexClient(base, path=path, cookies={COOKIE_NAME: cookie}, keep_updates=False)
        self.first_waiting: dict[int, float] = {}
        self.ready_at: dict[int, float] = {}
        self.steady: set[int] = set()  # clips first seen after the first key press (one new clip per action)
        self.pressed = False

    def observe(self) -> None:
        now = time.perf_counter()
        for slot in slots(self.client):
            clip = int(slot.get("clip_id") or 0)
            if not clip:
                continue
            if slot.get("status") == "generating" and clip not in self.first_waiting:
                self.first_waiting[clip] = now
                if self.pressed:
                    self.steady.add(clip)
            elif slot.get("status") == "ready" and clip not in self.ready_at:
                self.ready_at[clip] = now

    def held(self) -> set[int]:
        return {int(s["clip_id"]) for s in slots(self.client) if s.get("clip_id")}


async def reviewer(tab: Tab, actions: int, think: float, rng: random.Random, metrics: Metrics) -> None:
    client = tab.client
    original = client._on_update  # record temp-clip transitions as the deltas arrive

    def on_update(message: Any) -> None:
        original(message)
        tab.observe()

    client._on_update = on_update  # type: ignore[method-assign]
    await client.connect(timeout=60)
    await client.wait_for(lambda s: bool(s.get(REVIEW, {}).get("loaded_rx_state_")), timeout=60)
    tab.observe()
    # A reviewer watches the first clip while the page prepares the next ones: the figures below are the
    # steady state; what the page load itself costs is reported apart (temp_ready_pushed_page_load_ms).
    await client.wait_for(lambda s: all(x.get("status") in ("ready", "empty") for x in slots(client)), timeout=300)
    for _ in range(actions):
        clip = current_clip(client)
        if not clip:
            return
        waited = time.perf_counter()
        await client.wait_for(lambda s: current_clip(client).get("status") == "ready", timeout=120)
        metrics.waited_for_ready.append(time.perf_counter() - waited)
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))
        clip_id = int(current_clip(client)["id"])
        action = rng.choice(ACTIONS)
        done = f"{VERBS[action]} clip {clip_id}."
        sent = await client.send(COMMAND, {"command": {"action": action, "clip": clip_id, "frame": -1}})
        tab.pressed = True
        metrics.pressed += 1
        shown = await client.wait_for(
            lambda s, clip_id=clip_id: (
                current_clip(client).get("id") != clip_id and current_clip(client).get("status") == "ready"
            ),
            timeout=120,
        )
        metrics.shown.append(shown.received_at - sent)
        committed = await client.wait_for(
            lambda s, done=done: var(client, "message", "") == done or var(client, "message_tone") == "red",
            timeout=60,
        )
        if var(client, "message_tone") == "red":
            metrics.refused += 1
            continue
        metrics.committed.append(committed.received_at - sent)
        metrics.acted.append(clip_id)


class ProcessWatch:
    """CPU seconds and peak RSS of a process tree, sampled while the reviewers work."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self._task: asyncio.Task[None] | None = None

    def tree(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.tree():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    async def _sample(self) -> None:
        while True:
            rss = 0
            for process in self.tree():
                try:
                    rss += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            await asyncio.sleep(0.2)

    def start(self) -> None:
        self.peak_rss = 0
        self._task = asyncio.create_task(self._sample())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()


def statements(engine: Any) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT r.rolname, sum(s.calls) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                "WHERE r.rolname IN ('bench_web', 'bench_worker') GROUP BY r.rolname"
            )
        ).all()
    return {str(role): int(calls) for role, calls in rows}


def reset_statements(engine: Any) -> None:
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_stat_statements_reset()"))


async def run_phase(
    base: str, cookies: list[str], actions: int, think: float, engine: Any, web: ProcessWatch, seed: int
) -> dict[str, Any]:
    metrics = Metrics()
    tabs = [Tab(base, cookie) for cookie in cookies]
    reset_statements(engine)
    cpu_before, wall_before = web.cpu_seconds(), time.perf_counter()
    bench_before = _own_cpu()
    psutil.cpu_percent(None)  # start the machine-wide measurement
    with engine.connect() as connection:
        since = connection.execute(text("SELECT now()")).scalar_one()
    web.start()
    rng = random.Random(seed)

    async def arrive(index: int, tab: Tab, seed: float) -> None:
        await asyncio.sleep(index * ARRIVAL_SECONDS)  # reviewers open the page one after another
        await reviewer(tab, actions, think, random.Random(seed), metrics)

    try:
        await asyncio.gather(*(arrive(i, tab, rng.random()) for i, tab in enumerate(tabs)))
        held = [tab.held() for tab in tabs]
        metrics.overlaps = sum(len(a & b) for i, a in enumerate(held) for b in held[i + 1 :])
    finally:
        web.stop()
        for tab in tabs:
            await tab.client.close()
    wall = time.perf_counter() - wall_before
    cpu = web.cpu_seconds() - cpu_before
    machine_busy = psutil.cpu_percent(None)
    bench_cpu = _own_cpu() - bench_before
    counts = statements(engine)
    for tab in tabs:
        for clip, first in tab.first_waiting.items():
            if clip in tab.ready_at:
                target = metrics.ready_pushed_steady if clip in tab.steady else metrics.ready_pushed
                target.append(tab.ready_at[clip] - first)
    with engine.connect() as connection:
        db_ready = [
            float(ms)
            for (ms,) in connection.execute(
                text(
                    "SELECT extract(epoch FROM ready_at - requested_at) * 1000 FROM temp_clips "
                    "WHERE ready_at IS NOT NULL AND requested_at >= :since"
                ),
                {"since": since},
            )
        ]
        generate_ms = [
            float(ms)
            for (ms,) in connection.execute(
                text("SELECT generate_ms FROM temp_clips WHERE generate_ms IS NOT NULL AND requested_at >= :since"),
                {"since": since},
            )
        ]
        logged = connection.execute(
            text("SELECT count(*) FROM review_actions WHERE created_at >= :since"), {"since": since}
        ).scalar_one()
        doubled = connection.execute(
            text(
                "SELECT count(*) FROM (SELECT clip_ids[1] FROM review_actions WHERE created_at >= :since "
                "GROUP BY 1 HAVING count(*) > 1) d"
            ),
            {"since": since},
        ).scalar_one()
    committed = len(metrics.committed)
    return {
        "reviewers": len(cookies),
        "pressed": metrics.pressed,
        "committed": committed,
        "refused": metrics.refused,
        "logged_actions": int(logged),
        "lost_actions": committed - int(logged) if committed > int(logged) else 0,
        "extra_actions": int(logged) - committed if int(logged) > committed else 0,
        "doubled_clips": int(doubled),
        "queue_overlaps": metrics.overlaps,
        "shown_ms": summary(metrics.shown),
        "committed_ms": summary(metrics.committed),
        "temp_ready_pushed_ms": summary(metrics.ready_pushed_steady),
        "temp_ready_pushed_page_load_ms": summary(metrics.ready_pushed),
        "temp_ready_db_ms": summary([v / 1000 for v in db_ready]),
        "temp_generate_ms": summary([v / 1000 for v in generate_ms]),
        "waited_for_ready_ms": summary(metrics.waited_for_ready),
        "statements_per_action": {role: round(n / max(1, committed), 1) for role, n in counts.items()},
        "web_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        "web_peak_rss_mb": round(web.peak_rss / 1e6, 1),
        # Everything runs on this one machine: the simulated reviewers too.
        "machine_cpu_percent_all_cores": machine_busy,
        "bench_clients_cpu_percent_of_one_core": round(100 * bench_cpu / wall, 1),
        "seconds": round(wall, 1),
    }


def _own_cpu() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def summary(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"n": 0}
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 0.5), 1),
        "p95": round(percentile(ms, 0.95), 1),
        "max": round(max(ms), 1),
        "mean": round(statistics.fmean(ms), 1),
    }


def baseline_stream_copies(engine: Any, env: dict[str, str], tmp: Path, count: int) -> dict[str, float]:
    """Plain ffmpeg, the same command the worker runs, from a presigned URL of the same proxy."""
    os.environ.update(
        {k: env[k] for k in ("S3_ENDPOINT_URL", "S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    )
    os.environ.update({"DATABASE_URL": env["DATABASE_URL"], "REDIS_URL": env["REDIS_URL"], "SECRET_KEY": SECRET})
    from heaters.adapters import get_media_urls

    with engine.connect() as connection:
        video = connection.execute(
            text("SELECT proxy_filepath, fps_num, fps_den, frame_count FROM source_videos")
        ).one()
        clips = connection.execute(
            text("SELECT start_frame, end_frame FROM clips ORDER BY start_frame LIMIT :n"), {"n": count}
        ).all()
    url = get_media_urls().get_url(video[0], expires_in=600)
    fps = Fraction(video[1], video[2])
    times = []
    for index, (start, end) in enumerate(clips):
        out = tmp / f"baseline_{index}.mp4"
        args = stream_copy_args(url, out, start_frame=start, end_frame=end, fps=fps, frame_count=video[3])
        started = time.perf_counter()
        subprocess.run(args, check=True, stdin=subprocess.DEVNULL, capture_output=True)
        times.append(time.perf_counter() - started)
    return summary(times)


async def upload_interference(base: str, cookies: list[str], big: Path, samples: int) -> dict[str, Any]:
    """Round trips of one tab's cheap event (open the help) while another tab uploads a large file."""
    actor = Tab(base, cookies[0])
    uploader = ReflexClient(base, path="/videos", cookies={COOKIE_NAME: cookies[1]}, keep_updates=False)
    await actor.client.connect(timeout=60)
    await actor.client.wait_for(lambda s: bool(s.get(REVIEW, {}).get("loaded_rx_state_")), timeout=60)
    await uploader.connect(timeout=60)

    async def round_trips() -> list[float]:
        found = []
        for _ in range(samples):
            before = bool(var(actor.client, "show_help"))
            sent = await actor.client.send(COMMAND, {"command": {"action": "help"}})
            update = await actor.client.wait_for(
                lambda s, before=before: bool(var(actor.client, "show_help")) != before
            )
            found.append(update.received_at - sent)
            await asyncio.sleep(0.05)
        return found

    quiet = await round_trips()

    async def upload() -> float:
        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=base, timeout=600, cookies={COOKIE_NAME: cookies[1]}) as http:
            with big.open("rb") as handle:
                response = await http.post(
                    "/_upload",
                    files={"files": (big.name, handle, "video/mp4")},
                    headers={"reflex-client-token": uploader.token, "reflex-event-handler": VIDEOS_UPLOAD},
                )
            response.raise_for_status()
        await uploader.wait_for(
            lambda s: (
                not s.get(state_path(state_name("heaters.pages.videos", "VideosState")), {}).get("busy_rx_state_", True)
            ),
            timeout=600,
        )
        return time.perf_counter() - started

    upload_task = asyncio.create_task(upload())
    await asyncio.sleep(0.3)
    during = await round_trips()
    upload_seconds = await upload_task
    await actor.client.close()
    await uploader.close()
    return {
        "upload_mb": round(big.stat().st_size / 1e6),
        "upload_seconds": round(upload_seconds, 1),
        "round_trip_quiet_ms": summary(quiet),
        "round_trip_during_upload_ms": summary(during),
    }


BROWSER_PRESS = """(key) => new Promise((resolve) => {
  const old = document.querySelector('[data-testid="player"]');
  const oldClip = old && old.dataset.clipId;
  const t0 = performance.now();
  const check = () => {
    const v = document.querySelector('[data-testid="player"]');
    if (v && v.dataset.clipId !== oldClip && v.readyState >= 2 && getComputedStyle(v).display !== 'none') {
      const shown = performance.now() - t0;
      v.requestVideoFrameCallback(() => resolve({shown, playing: performance.now() - t0}));
      setTimeout(() => resolve({shown, playing: -1}), 3000);
      return;
    }
    requestAnimationFrame(check);
  };
  window.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true}));
  check();
})"""
PLAYABLE = "() => { const v = document.querySelector('[data-testid=\"player\"]'); return v && v.readyState >= 2; }"


async def browser_tab(base: str, cookie: str, presses: int, think: float) -> dict[str, Any]:
    """One real Chromium tab: key press -> the next clip's <video> visible with a decoded frame, and -> its
    next frame presented (it plays), timed inside the page."""
    from playwright.async_api import async_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
    shown, playing = [], []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        context = await browser.new_context()
        host = base.split("//", 1)[1].split(":")[0]
        await context.add_cookies([{"name": COOKIE_NAME, "value": cookie, "domain": host, "path": "/"}])
        page = await context.new_page()
        await page.goto(f"{base}/review")
        for _ in range(presses):
            await page.wait_for_function(PLAYABLE, timeout=60_000)
            await asyncio.sleep(think)
            result = await page.evaluate(BROWSER_PRESS, "s")
            shown.append(result["shown"] / 1000)
            if result["playing"] >= 0:
                playing.append(result["playing"] / 1000)
        await browser.close()
    return {"shown_and_playable_ms": summary(shown), "next_frame_presented_ms": summary(playing)}


def source(clips: int) -> Path:
    path = OUT / f"review_source_{clips}clips_360p25.mp4"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        make_benchmark_video(path, seconds=clips, cuts=clips - 1, size=(640, 360), fps=25, timeout=3600)
    return path


def wait_until(predicate: Any, timeout: float, what: str, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise SystemExit(f"timed out waiting for {what}\n{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviewers", default="1,20")
    parser.add_argument("--actions", type=int, default=15, help="key presses per reviewer and phase")
    parser.add_argument("--think", type=float, default=2.0, help="seconds a reviewer watches a clip (±50 %%)")
    parser.add_argument("--upload-mb", type=int, default=300)
    args = parser.parse_args()
    phases = [int(n) for n in args.reviewers.split(",")]
    needed = sum(n * (args.actions + 8) for n in phases) + 80  # and a Chromium tab, and the upload test

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {info['ffmpeg']}")
    video = source(max(200, needed))
    with tempfile.TemporaryDirectory(prefix="heaters-bench-review-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        result = run(video, tmp, phases, args)
    record = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "bench": "review", "machine": info, **result}
    print(json.dumps(record, indent=2))
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "results.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def run(video: Path, tmp: Path, phases: list[int], args: argparse.Namespace) -> dict[str, Any]:
    pg = Postgres(tmp / "pg", free_port(), durable=False)
    rd = Redis(tmp / "redis", free_port(), persist=False)
    s3 = SeaweedS3(tmp / "s3", free_port(), access_key="BENCHKEY", secret_key="benchsecret123", bucket="bench")
    services = [pg, rd, s3]
    children: list[subprocess.Popen[bytes]] = []
    for service in services:
        service.start()
    try:
        admin = create_engine(
            pg.url_for("heaters").replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as connection:
            connection.execute(text("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"))
        admin.dispose()
        pg.stop()
        pg.start()
        base_url = pg.create_database("bench")
        engine = create_engine(base_url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            for role in ("bench_web", "bench_worker"):
                connection.execute(text(f"CREATE ROLE {role} SUPERUSER LOGIN"))
        env = {
            **os.environ,
            "DATABASE_URL": base_url,
            "REDIS_URL": rd.url,
            "S3_ENDPOINT_URL": s3.url,
            "S3_BUCKET": "bench",
            "AWS_ACCESS_KEY_ID": "BENCHKEY",
            "AWS_SECRET_ACCESS_KEY": "benchsecret123",
            "SECRET_KEY": SECRET,
            "WORK_DIR": str(tmp / "work"),
            "PLAYBACK_CACHE_DIR": str(tmp / "playback"),
            "SCHEDULER_ENABLED": "false",
            "MASTER_ENABLED": "false",
            "APP_ENV": "test",
        }
        as_role = {k: v.replace("postgres@", "{role}@") if k == "DATABASE_URL" else v for k, v in env.items()}
        subprocess.run([HEATERS, "db", "upgrade"], env=env, check=True, capture_output=True)
        worker_log, web_log = tmp / "worker.log", tmp / "web.log"
        worker_env = {**as_role, "DATABASE_URL": as_role["DATABASE_URL"].format(role="bench_worker")}
        worker_env["WORKER_QUEUES"] = "media_processing,temp_clips,default"
        with worker_log.open("wb") as out:
            children.append(
                subprocess.Popen(
                    [HEATERS, "worker"], env=worker_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        subprocess.run([HEATERS, "ingest", str(video), "--title", "bench"], env=env, check=True, capture_output=True)
        clips = wait_until(
            lambda: _count(engine, "SELECT count(*) FROM clips"), timeout=1800, what="the clips", log=worker_log
        )
        print(f"video: {video.name}, {clips} clips pending review")
        port = free_port()
        web_env = {**as_role, "DATABASE_URL": as_role["DATABASE_URL"].format(role="bench_web"), "PORT": str(port)}
        with web_log.open("wb") as out:
            web_proc = subprocess.Popen(
                [HEATERS, "web"], env=web_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
            )
        children.append(web_proc)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(base), timeout=300, what="heaters web", log=web_log)
        cookies = _reviewers(engine, max(max(phases), 2))
        web = ProcessWatch(web_proc.pid)
        asyncio.run(_warm(base, cookies[0]))
        results: dict[str, Any] = {"clips": clips, "phases": []}
        for index, count in enumerate(phases):
            phase = asyncio.run(run_phase(base, cookies[:count], args.actions, args.think, engine, web, seed=index))
            results["phases"].append(phase)
            print(json.dumps(phase))
        results["chromium_tab"] = asyncio.run(browser_tab(base, cookies[0], 20, args.think))
        print(json.dumps(results["chromium_tab"]))
        results["baseline_stream_copy_ms"] = baseline_stream_copies(engine, env, tmp, 40)
        big = tmp / "big.mp4"
        with big.open("wb") as handle:
            handle.write(os.urandom(args.upload_mb * 1024 * 1024))
        results["upload_interference"] = asyncio.run(upload_interference(base, cookies, big, 20))
        return results
    finally:
        for child in reversed(children):
            stop_process_group(child.pid, popen=child, timeout=30)
        for service in reversed(services):
            service.stop()


async def _warm(base: str, cookie: str) -> None:
    """The first event after a server start is slow (warm-up): not part of any figure."""
    tab = Tab(base, cookie, path="/videos")
    await tab.client.connect(timeout=120)
    await tab.client.close()


def _count(engine: Any, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200 and httpx.get(base, timeout=2).is_success
    except httpx.HTTPError:
        return False


def _reviewers(engine: Any, count: int) -> list[str]:
    from heaters.auth.passwords import hash_password

    cookies = []
    digest = hash_password("bench-password")
    with engine.begin() as connection:
        for n in range(count):
            user_id = connection.execute(
                text("INSERT INTO users (username, password_hash) VALUES (:u, :h) RETURNING id"),
                {"u": f"reviewer{n + 1:02d}", "h": digest},
            ).scalar_one()
            cookies.append(issue_token(int(user_id), SECRET))
    return cookies


if __name__ == "__main__":
    main()
