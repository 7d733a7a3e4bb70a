"""`make test-image`: build the Docker image with podman and show that every role works in it.

Against throwaway PostgreSQL (+ pgvector), Redis and S3 servers on this host (the same ones the test
suite uses), it runs, from the one image:
  the release step   render.yaml's preDeployCommand (`heaters db upgrade`),
  `heaters doctor`   every dependency reachable from inside the container,
  the web role       the image's CMD: /healthz, /readyz and the sign-in page answer,
  a worker role      render.yaml's heaters-worker dockerCommand (`tini -- heaters worker`),
  the scheduler role heaters-scheduler's (`tini -- heaters scheduler`): its Dispatcher tick runs,
  a real ingest      `heaters demo` renders a video with the image's FFmpeg and ingests it; the worker
                     encodes, detects and cuts it into the clips the demo has, inside the container,
and checks that no process in any container runs as root. Prints each step's time and the total.
Exit status 0 only if every check passed; on failure the containers' logs are printed.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from heaters.devstack.postgres import Postgres  # noqa: E402
from heaters.devstack.redis import Redis  # noqa: E402
from heaters.devstack.seaweed import SeaweedS3  # noqa: E402
from heaters.devstack.service import ManagedService, free_port  # noqa: E402
from heaters.queues import Queue  # noqa: E402

IMAGE = "localhost/heaters:test"
PREFIX = "heaters-image-test"
DEMO_CLIPS = 13  # `heaters demo`: twelve hard cuts
BUCKET = "heaters-image-test"
LOCAL_WHEELS = "/opt/wheels"


class CheckFailed(Exception):
    pass


def render_commands() -> dict[str, list[str]]:
    """The commands render.yaml runs, by role, so this runs exactly what Render would."""
    blueprint = yaml.safe_load((ROOT / "render.yaml").read_text())
    services = {s["name"]: s for s in blueprint["services"]}
    return {
        "release": shlex.split(services["heaters-web"]["preDeployCommand"]),
        "worker": shlex.split(services["heaters-worker"]["dockerCommand"]),
        "scheduler": shlex.split(services["heaters-scheduler"]["dockerCommand"]),
    }


def say(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m", flush=True)


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise CheckFailed(f"podman {' '.join(args[:3])} … exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def wait_for(what: str, condition: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Poll until `condition` returns something truthy; fail naming what never happened and the last error."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, CheckFailed, ValueError) as error:
            last = error
        else:
            if value:
                return value
            last = value
        time.sleep(interval)
    raise CheckFailed(f"{what}: not within {timeout:.0f} s (last: {last!r})")


def http_status(url: str, follow: bool = False) -> int:
    request = urllib.request.Request(url, method="GET")
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def wait_status(
    url: str, want: int, timeout: float, alive: Callable[[], object] | None = None, follow: bool = False
) -> None:
    seen: list[int] = []

    def answered() -> bool:
        if alive is not None:
            alive()
        seen.append(http_status(url, follow))
        return seen[-1] == want

    try:
        wait_for(f"GET {url} answers {want}", answered, timeout)
    except CheckFailed as error:
        raise CheckFailed(f"{error}; it answered {seen[-1] if seen else 'nothing'}") from None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextmanager
def servers(root: Path) -> Iterator[dict[str, str]]:
    """The throwaway PostgreSQL, Redis and S3 the containers use, on this host's loopback."""
    access_key, secret_key = "IMG" + secrets.token_hex(8).upper(), secrets.token_hex(20)
    made: list[ManagedService] = [
        Postgres(root / "postgres", free_port(), durable=False),
        Redis(root / "redis", free_port(), persist=False),
        SeaweedS3(root / "s3", free_port(), access_key=access_key, secret_key=secret_key, bucket=BUCKET),
    ]
    with ExitStack() as stack:
        for service in made:
            service.start(timeout=90)
            stack.callback(service.stop)
        pg, redis, s3 = made
        assert isinstance(pg, Postgres) and isinstance(redis, Redis) and isinstance(s3, SeaweedS3)
        yield {
            "DATABASE_URL": pg.create_database("heaters_image"),
            "REDIS_URL": redis.url,
            "S3_ENDPOINT_URL": s3.url,
            "S3_BUCKET": s3.bucket,
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "AWS_REGION": s3.region,
        }


class Run:
    """One test run: its env file, its containers, the times of its steps."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.env_file = work / "image.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.env_file.chmod(0o600)  # secrets never go on a command line
        self.containers: list[str] = []
        self.times: list[tuple[str, float]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        say(name)
        started = time.monotonic()
        yield
        self.times.append((name, time.monotonic() - started))

    def base_args(self, extra_env: dict[str, str]) -> list[str]:
        args = ["--network", "host", "--env-file", str(self.env_file)]
        for key, value in extra_env.items():
            args += ["-e", f"{key}={value}"]
        return args

    def once(self, *command: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
        result = podman("run", "--rm", "--no-healthcheck", *self.base_args(env or {}), IMAGE, *command, timeout=timeout)
        return result.stdout

    def start(self, role: str, *command: str, env: dict[str, str] | None = None) -> str:
        """A long-running role; only the web role keeps the image's HEALTHCHECK (render.yaml says the same)."""
        name = f"{PREFIX}-{role}"
        podman("rm", "-f", name, check=False)
        health = [] if role == "web" else ["--no-healthcheck"]
        podman("run", "-d", "--name", name, *health, *self.base_args(env or {}), IMAGE, *command)
        self.containers.append(name)
        return name

    def exec(self, container: str, *command: str, timeout: float = 120) -> str:
        return podman("exec", container, *command, timeout=timeout).stdout

    def alive(self, container: str) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", container).stdout.strip()
        if state != "true":
            raise CheckFailed(f"container {container} stopped")
        return True

    def uids(self, container: str) -> dict[str, int]:
        """Every process in the container with its real uid, read from /proc inside it."""
        script = (
            "import os, json; out = {}\n"
            "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
            "    try:\n"
            "        status = open(f'/proc/{pid}/status').read().splitlines()\n"
            "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' ').decode().strip()\n"
            "    except OSError:\n"
            "        continue  # ended while we looked\n"
            "    uid = next(int(l.split()[1]) for l in status if l.startswith('Uid:'))\n"
            "    out[f'{pid} {cmd[:80]}'] = uid\n"
            "print(json.dumps(out))"
        )
        return dict(json.loads(self.exec(container, "python", "-c", script)))

    def dump_logs(self) -> None:
        for name in self.containers:
            logs = podman("logs", "--tail", "60", name, check=False)
            print(f"\n----- {name} (last 60 lines) -----\n{logs.stdout}{logs.stderr}", file=sys.stderr)

    def remove(self) -> None:
        for name in self.containers:
            podman("rm", "-f", "-t", "10", name, check=False)


def build() -> float:
    started = time.monotonic()
    log = ROOT / ".tools" / "podman" / "build.log"
    # --format docker keeps the HEALTHCHECK; a local wheel directory (torch's CPU build, which this
    # machine cannot download) is lent to the model stage read-only.
    wheels = ["-v", f"{LOCAL_WHEELS}:{LOCAL_WHEELS}:ro"] if Path(LOCAL_WHEELS).is_dir() else []
    with log.open("w") as out:
        result = subprocess.run(
            ["podman", "build", "--format", "docker", *wheels, "-t", IMAGE, str(ROOT)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        print("".join(log.read_text().splitlines(keepends=True)[-40:]), file=sys.stderr)
        raise CheckFailed(f"podman build exited {result.returncode} (whole log: {log})")
    return time.monotonic() - started


def check(run: Run, port: int) -> None:
    commands = render_commands()
    with run.step(f"release step (render.yaml's preDeployCommand): {shlex.join(commands['release'])}"):
        run.once(*commands["release"])
    with run.step("heaters doctor"):
        print(run.once("heaters", "doctor"))
    with run.step("the embedding model the image made loads (its sha256 checked)"):
        load = "from heaters.embeddings import efficientnet as m; e = m.load(); print(e.name, e.version, e.dim)"
        print(run.once("python", "-c", load))
    with run.step("web role (the image's CMD): /healthz, /readyz, /login"):
        web = run.start("web")
        base = f"http://127.0.0.1:{port}"
        wait_status(f"{base}/healthz", 200, 240, alive=lambda: run.alive(web))
        ready = http_status(f"{base}/readyz")
        if ready != 200:
            raise CheckFailed(f"/readyz answered {ready}")
        wait_status(f"{base}/login", 200, 60, follow=True)  # Reflex adds the slash
        protected = http_status(f"{base}/media/temp/clip_1.mp4")
        if protected not in (401, 403):
            raise CheckFailed(f"a media route answered {protected} to a visitor, not 401/403")
        health = podman("healthcheck", "run", web, check=False)
        if health.returncode != 0:
            raise CheckFailed(f"the image's HEALTHCHECK says {health.stdout.strip() or health.returncode}")
        print(f"healthz, readyz, login 200; a temp clip answers {protected} to a visitor; HEALTHCHECK healthy")
    with run.step("worker and scheduler roles (render.yaml's dockerCommands)"):
        worker = run.start("worker", *commands["worker"], env={"SCHEDULER_ENABLED": "false"})
        scheduler = run.start("scheduler", *commands["scheduler"])
        wait_for(
            "a worker process per queue beats on the broker",
            lambda: run.alive(worker) and sum(w["alive"] for w in jobs(run, worker)["workers"]) >= len(Queue),
            120,
        )
    with run.step(f"a video ingested to clips inside the container (heaters demo, {DEMO_CLIPS} clips)"):
        video_id = int(run.exec(worker, "heaters", "demo", timeout=300).strip().splitlines()[-1])

        def clips_ready() -> bool:
            video = json.loads(run.exec(worker, "heaters", "videos", "show", str(video_id), "--json"))
            if video.get("last_error"):
                raise CheckFailed(f"video {video_id} failed: {video['last_error']}")
            run.alive(worker)
            return len(video["clips"]) == DEMO_CLIPS and all(c["state"] == "pending_review" for c in video["clips"])

        wait_for(f"video {video_id} cut into {DEMO_CLIPS} clips awaiting review", clips_ready, 600, interval=2)
    with run.step("the scheduler's Dispatcher tick ran"):
        wait_for(
            "a dispatch tick recorded",
            lambda: (
                run.alive(scheduler)
                and any(t["job"] == "dispatch" and t["last_run"] for t in jobs(run, worker)["ticks"])
            ),
            150,
            interval=3,
        )
    with run.step("no process runs as root"):
        for name in run.containers:
            uids = run.uids(name)
            root_owned = {proc: uid for proc, uid in uids.items() if uid == 0}
            if root_owned:
                raise CheckFailed(f"{name} runs processes as root: {root_owned}")
            print(f"{name}: {len(uids)} processes, uids {sorted(set(uids.values()))}")


def jobs(run: Run, container: str) -> dict[str, Any]:
    return dict(json.loads(run.exec(container, "heaters", "jobs", "list", "--json")))


def main() -> int:
    reuse = "--no-build" in sys.argv[1:]  # iterate on the checks against the image built last
    started = time.monotonic()
    say("podman and a debian:bookworm-slim base (scripts/podman_base.sh)")
    subprocess.run([str(ROOT / "scripts" / "podman_base.sh")], check=True, stdout=subprocess.DEVNULL)
    os.environ["CONTAINERS_CONF"] = str(ROOT / ".tools" / "podman" / "containers.conf")
    say(f"building {IMAGE} with podman")
    build_s = 0.0 if reuse else build()
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    print(f"built in {build_s:.0f} s, {size / 1e6:.0f} MB")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="heaters-image-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # PostgreSQL runs as a system user and must enter it
        with servers(work) as service_env:
            env = {
                **service_env,
                "SECRET_KEY": secrets.token_urlsafe(36),
                "APP_ENV": "production",
                "PORT": str(port),
                "BIND_HOST": "127.0.0.1",  # host networking: stay on loopback
                "PUBLIC_HOST": "127.0.0.1",
                "EXPORT_GRACE_SECONDS": "0",
            }
            run = Run(work, env)
            try:
                check(run, port)
            except (CheckFailed, subprocess.TimeoutExpired) as error:
                run.dump_logs()
                print(f"\nFAILED: {error}", file=sys.stderr)
                return 1
            finally:
                run.remove()
    total = time.monotonic() - started
    print(f"\nmake test-image passed on {platform.node()} ({os.cpu_count()} CPUs, {platform.platform()})")
    print(f"  {'podman build':<70} {build_s:6.1f} s")
    for name, seconds in run.times:
        print(f"  {name:<70} {seconds:6.1f} s")
    print(f"  {'total':<70} {total:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
