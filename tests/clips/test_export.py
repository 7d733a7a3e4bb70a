"""Export of approved clips by a real `heaters worker` on the `exports` queue, against real S3 and Postgres.

The proxy is a real all-intra proxy (encode_proxy) whose every frame shows its own number (two grey levels),
so a frame out of place is seen in the pixels. Clips are approved through the review service and sent by the
Dispatcher's sweep, as in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from heaters.adapters import get_storage
from heaters.auth.service import create_user
from heaters.clips import service as clips_service
from heaters.clips import stages as clip_stages
from heaters.db import unit_of_work
from heaters.media.tools import run_tool
from heaters.models import ReviewActionKind, SourceVideo
from heaters.pipeline.dispatch import sweep
from heaters.pipeline.runner import run_stage
from heaters.pipeline.stages import Stage
from heaters.review import leases
from heaters.review import service as review_service
from heaters.review.errors import UndoRefused
from heaters.review.leases import Reviewer
from heaters.videos.encode import encode_proxy
from heaters.videos.stages import write_cuts_and_clips
from tests.fixtures.workers import Worker, claim_row, collected_events, run_cli, wait_for

pytestmark = pytest.mark.slow

FPS = Fraction(25)
LEVELS = 27  # frame n shows grey 16 + 8 * (n mod 27) on its left half and 16 + 8 * (n // 27 mod 27) on its right
WIDTH, HEIGHT = 160, 96
FRAMES = 400
TIMEOUT = 60.0
EXPORT = Stage.EXPORT
LEASE = 300


# ---- media ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proxy:
    path: Path
    frame_count: int
    width: int
    height: int
    frames: tuple[bytes, ...] = field(repr=False)  # every frame, decoded to gray


def decode_gray(path: Path, width: int, height: int) -> list[bytes]:
    args = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "rawvideo"]
    data = run_tool([*args, "-pix_fmt", "gray", "-"], timeout=TIMEOUT).stdout
    size = width * height
    assert data and len(data) % size == 0, f"{len(data)} bytes is not a whole number of {width}x{height} frames"
    return [data[i : i + size] for i in range(0, len(data), size)]


def frame_number(frame: bytes, width: int, height: int) -> int:
    """The number a frame shows: read back from the middle of each half."""
    row = (height // 2) * width

    def level(x: int) -> int:
        return round((frame[row + x] - 16) / 8)

    return level(width // 4) + LEVELS * level(3 * width // 4)


FFPROBE_COUNT = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries"]


def counted_frames(path: Path) -> int:
    """ffprobe's own count of decoded video frames."""
    args = [*FFPROBE_COUNT, "stream=nb_read_frames", "-of", "csv=p=0", str(path)]
    return int(run_tool(args, timeout=TIMEOUT).stdout_text.strip())


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Proxy:
    folder = tmp_path_factory.mktemp("export_media")
    source = folder / "numbered.mp4"
    seconds = FRAMES / FPS
    run_tool(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"color=c=black:s={WIDTH}x{HEIGHT}:r={FPS}:d={float(seconds)}",
            "-f", "lavfi", "-i", f"sine=f=440:r=48000:d={float(seconds)}",
            "-vf", f"format=gray,geq=lum='if(lt(X,W/2),16+8*mod(N,{LEVELS}),16+8*mod(floor(N/{LEVELS}),{LEVELS}))',"
            "format=yuv420p",
            "-map", "0:v", "-map", "1:a", "-frames:v", str(FRAMES),
            "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "50", "-c:a", "aac", str(source),
        ],
        timeout=120,
    )  # fmt: skip
    made = encode_proxy(source, folder, crf=18, timeout=300, on_progress=None)
    info = made.info
    assert (info.fps, info.frame_count, info.width, info.height) == (FPS, FRAMES, WIDTH, HEIGHT)
    frames = decode_gray(made.path, WIDTH, HEIGHT)
    assert [frame_number(f, WIDTH, HEIGHT) for f in frames] == list(range(FRAMES)), "the proxy's frames lie"
    return Proxy(made.path, FRAMES, WIDTH, HEIGHT, tuple(frames))


# ---- rows -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Film:
    video_id: int
    clips: list[int]
    proxy_key: str


def add_video(proxy: Proxy, title: str, scenes: tuple[int, ...], *, upload: bool = True) -> Film:
    """An encoded video on the proxy (its first sum(scenes) frames), cut into pending clips of `scenes`."""
    key = f"proxies/export_test_{secrets.token_hex(4)}_proxy.mp4"
    if upload:
        get_storage().upload_file(proxy.path, key, content_type="video/mp4")
    frames = sum(scenes)
    assert frames <= proxy.frame_count
    with unit_of_work() as session:
        video = SourceVideo(
            title=title,
            ingest_state="encoded",
            needs_splicing=False,
            proxy_filepath=key,
            fps_num=FPS.numerator,
            fps_den=FPS.denominator,
            frame_count=proxy.frame_count,
            duration_seconds=float(proxy.frame_count / FPS),
            width=proxy.width,
            height=proxy.height,
        )
        session.add(video)
        session.flush()
        assert video.id is not None
        cuts, at = [], 0
        for length in scenes[:-1]:
            at += length
            cuts.append((at, 30.0))
        clip_ids = write_cuts_and_clips(session, video.id, cuts, frames)
    return Film(video.id, clip_ids, key)


@pytest.fixture
def reviewer(engine: Engine) -> Reviewer:
    with unit_of_work() as session:
        user = create_user(session, "vera", "vera-password")
        assert user.id is not None
        return Reviewer(user.id, "tab-" + secrets.token_hex(8))


def review(reviewer: Reviewer, kind: ReviewActionKind, *clip_ids: int) -> None:
    """Each decision as the review page makes it: lease the clip to the tab, act, one transaction each."""
    for clip_id in clip_ids:
        with unit_of_work() as session:
            leases.take(session, reviewer, clip_id, lease_seconds=LEASE)
            review_service.act(session, kind, clip_id, reviewer, lease_seconds=LEASE)


def dispatch() -> dict[str, int]:
    with unit_of_work() as session:
        return sweep(session)


def queued_by_review(engine: Engine, clip_ids: list[int]) -> None:
    """The approval itself queued each export (EXPORT_GRACE_SECONDS=0 here): a sweep finds nothing to add."""
    for clip_id in clip_ids:
        assert export_claim(engine, clip_id)["state"] in {"queued", "running", "succeeded"}, clip_id
    assert dispatch()[EXPORT.key] == 0


def clips(engine: Engine, ids: list[int]) -> dict[int, dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM clips WHERE id = ANY(:ids)"), {"ids": ids}).mappings()
        return {int(r["id"]): dict(r) for r in rows}


def states(engine: Engine, ids: list[int]) -> dict[int, str]:
    return {i: r["ingest_state"] for i, r in clips(engine, ids).items()}


def all_in(engine: Engine, ids: list[int], state: str) -> bool:
    return set(states(engine, ids).values()) == {state}


def export_claim(engine: Engine, clip_id: int) -> dict[str, Any]:
    row = claim_row(engine, EXPORT.key, clip_id)
    assert row is not None, f"clip {clip_id} has no export claim"
    return row


def head(key: str) -> dict[str, Any]:
    storage = get_storage()
    return storage.client.head_object(Bucket=storage.bucket, Key=key)  # type: ignore[attr-defined]


def clip_keys() -> list[str]:
    return sorted(get_storage().list_keys("clips/"))


class SharedWorker:
    """One `heaters worker` on the exports queue for the module, started on first use: tests that need no
    export consumer (or their own) stop it first. Between tests it is idle; each test's `pipeline_env` has
    emptied Redis and the bucket by the time it gets the worker."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.worker: Worker | None = None

    def ensure(self) -> Worker:
        if self.worker is None or self.worker.proc.poll() is not None:
            self.worker = Worker(self.env, self.log, "exports")
        return self.worker

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


@pytest.fixture(scope="module")
def shared_worker(
    app_env: dict[str, str], broker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedWorker]:
    root = tmp_path_factory.mktemp("export_worker")
    (root / "work").mkdir()
    env = {
        **os.environ,
        **app_env,
        "WORK_DIR": str(root / "work"),
        "JOB_LEASE_SECONDS": "10",
        "JOB_MAX_ATTEMPTS": "2",
        "JOB_BACKOFF_SECONDS": "0.5",
        "SCHEDULER_ENABLED": "false",
    }
    shared = SharedWorker(env, root / "worker.log")
    yield shared
    shared.stop()


@pytest.fixture
def export_worker(shared_worker: SharedWorker, pipeline_env: dict[str, str]) -> Worker:
    return shared_worker.ensure()


def check_export(proxy: Proxy, row: dict[str, Any], tmp_path: Path) -> None:
    """The object is exactly the clip's frames [start, end), copied from the proxy."""
    key = row["clip_filepath"]
    expected = row["end_frame"] - row["start_frame"]
    info = get_storage().head(key)
    assert info is not None and info.metadata["frames"] == str(expected), info
    assert info.metadata["clip-id"] == str(row["id"])
    local = tmp_path / f"exported_{row['id']}.mp4"
    get_storage().download_file(key, local)
    assert counted_frames(local) == expected
    frames = decode_gray(local, proxy.width, proxy.height)
    assert len(frames) == expected
    assert frames[0] == proxy.frames[row["start_frame"]], "the first frame is not the clip's start frame"
    assert frames[-1] == proxy.frames[row["end_frame"] - 1], "the last frame is not the clip's last frame"
    shown = [frame_number(f, proxy.width, proxy.height) for f in frames]
    assert shown == list(range(row["start_frame"], row["end_frame"]))
    assert row["processing_metadata"]["export"]["frames"] == expected


# ---- tests ----------------------------------------------------------------------------------------------
# The first two need no shared worker (one runs the export in this process, one brings its own workers);
# placed first, they run before it starts.


def test_an_approval_cannot_be_undone_once_its_export_has_started(
    engine: Engine,
    proxy: Proxy,
    reviewer: Reviewer,
    shared_worker: SharedWorker,
    pipeline_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Undo while the export runs (from inside its copy), and after it finished: refused both times."""
    shared_worker.stop()  # the approval's message must wait for the export this test runs itself
    film = add_video(proxy, "Undo", (30, 30))
    clip_id = film.clips[0]
    review(reviewer, ReviewActionKind.APPROVE, clip_id)
    refusals: list[str] = []
    real_copy = clip_stages.copy_segment

    def undo_refused() -> None:
        with pytest.raises(UndoRefused) as refused, unit_of_work() as session:
            review_service.undo(session, reviewer, lease_seconds=LEASE)
        refusals.append(str(refused.value))

    def copy_while_the_reviewer_undoes(*args: Any, **kwargs: Any) -> int:
        assert states(engine, [clip_id]) == {clip_id: "exporting"}
        undo_refused()
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(clip_stages, "copy_segment", copy_while_the_reviewer_undoes)
    run_stage(EXPORT, clip_id, clip_stages.run_export)  # what the worker runs on the approval's message
    assert states(engine, [clip_id]) == {clip_id: "exported"}
    undo_refused()

    assert len(refusals) == 2
    assert "exporting" in refusals[0] and "exported" in refusals[1], refusals
    row = clips(engine, [clip_id])[clip_id]
    assert row["ingest_state"] == "exported" and row["reviewed_by_user_id"] == reviewer.user_id
    assert row["clip_filepath"] == f"clips/Undo_{row['clip_identifier']}.mp4"
    with engine.connect() as connection:
        undone = connection.execute(text("SELECT undone_at FROM review_actions")).scalars().all()
        held = connection.execute(text("SELECT count(*) FROM review_leases")).scalar_one()
    assert undone == [None], "the refused undo left the approval standing"
    assert held == 0, "a refused undo leases nothing back to the tab"


def slow_ffmpeg(folder: Path) -> str:
    """A PATH on which ffmpeg reads its input at half real-time speed, like a proxy on a slow network: each
    export then runs for seconds, so a kill can land inside one."""
    real = shutil.which("ffmpeg")
    assert real is not None
    folder.mkdir()
    wrapper = folder / "ffmpeg"
    wrapper.write_text(f'#!/bin/sh\nexec {real} -readrate 0.5 "$@"\n')
    wrapper.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def batch_progress(engine: Engine, video_id: int) -> dict[str, int]:
    """How far the batch is: exported clips, exports running, and running claims older than one second."""
    with engine.connect() as connection:
        row = (
            connection.execute(
                text(
                    "SELECT count(*) FILTER (WHERE c.ingest_state = 'exported') AS done, "
                    "count(*) FILTER (WHERE c.ingest_state = 'exporting' AND j.state = 'running') AS running, "
                    "count(*) FILTER (WHERE j.state = 'running' AND j.lease_until < now() + interval '9 s') AS old "
                    "FROM clips c LEFT JOIN job_claims j ON j.stage = :stage AND j.entity_id = c.id "
                    "WHERE c.source_video_id = :video"
                ),
                {"stage": EXPORT.key, "video": video_id},
            )
            .mappings()
            .one()
        )
    return dict(row)


def test_a_worker_killed_mid_batch_is_replaced_and_every_clip_is_exported_once(
    engine: Engine,
    proxy: Proxy,
    reviewer: Reviewer,
    shared_worker: SharedWorker,
    start_worker: Callable[..., Any],
    pipeline_env: dict[str, str],
    tmp_path: Path,
) -> None:
    shared_worker.stop()  # the first worker must be alone on the queue
    scenes = (14, 13, 35, 32, 36, 31, 37, 30, 38, 39, 40, 55)  # 12 clips, 400 frames; the first two short
    film = add_video(proxy, "Batch", scenes)
    first = start_worker(queues="exports", PATH=slow_ffmpeg(tmp_path / "slow"))
    review(reviewer, ReviewActionKind.APPROVE, *film.clips)
    queued_by_review(engine, film.clips)

    # Kill when some clips are exported and both of the worker's threads have just claimed their next clip
    # (under a second ago, for exports that take seconds): every message the worker fetched is then a running
    # claim, which the Dispatcher sends again once its lease runs out. (A message fetched but not yet claimed
    # would stay `queued` for QUEUED_TTL_SECONDS.)
    wait_for(lambda: batch_progress(engine, film.video_id)["running"], timeout=60, what="the batch to start")
    pids = first.descendants()
    deadline = time.monotonic() + 60
    while True:  # a tight poll, so the kill lands right after the claims
        progress = batch_progress(engine, film.video_id)
        if progress["done"] >= 1 and progress["running"] == 2 and progress["old"] == 0:
            break
        assert time.monotonic() < deadline, (progress, first.log.read_text()[-4000:])
        time.sleep(0.01)
    for pid in pids:  # SIGKILL to every process at once, as Worker.kill does, without looking them up first
        with contextlib.suppress(ProcessLookupError):  # a short-lived child (a `ps`, an ffmpeg) may be gone
            os.kill(pid, signal.SIGKILL)
    first.proc.wait(timeout=10)

    at_kill = states(engine, film.clips)
    done = [i for i, s in at_kill.items() if s == "exported"]
    interrupted = [i for i, s in at_kill.items() if s == "exporting"]
    assert len(interrupted) == 2 and 0 < len(done) < len(film.clips) - 2, at_kill
    for clip_id in interrupted:
        claim = export_claim(engine, clip_id)
        assert (claim["state"], claim["attempts"]) == ("running", 1), claim
    assert dispatch()[EXPORT.key] == 0, "the dead worker's leases still run for seconds: nothing is taken over yet"

    second = shared_worker.ensure()
    logs = [first.log, second.log]
    # The messages the killed worker never fetched are still in Redis: the new worker runs those.
    rest = [i for i in film.clips if i not in done and i not in interrupted]
    wait_for(lambda: all_in(engine, rest, "exported"), timeout=60, what="the unstarted clips", logs=logs)
    assert states(engine, interrupted) == dict.fromkeys(interrupted, "exporting")

    # The killed worker's leases (10 s) run out; then one Dispatcher run sends exactly those two again.
    def leases_expired() -> bool:
        with engine.connect() as connection:
            return bool(
                connection.execute(
                    text(
                        "SELECT bool_and(lease_until < now()) FROM job_claims WHERE stage = :s AND entity_id = ANY(:i)"
                    ),
                    {"s": EXPORT.key, "i": interrupted},
                ).scalar_one()
            )

    wait_for(leases_expired, timeout=30, what="the killed worker's leases to run out")
    result = run_cli(pipeline_env, "dispatch")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[EXPORT.key] == 2, result.stdout
    wait_for(lambda: all_in(engine, film.clips, "exported"), timeout=60, what="every clip", logs=logs)

    rows = clips(engine, film.clips)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM clips")).scalar_one() == len(film.clips)
    keys = clip_keys()
    assert keys == sorted(r["clip_filepath"] for r in rows.values()), "one object per clip, no leftovers"
    assert len(set(keys)) == len(film.clips)
    for clip_id, row in rows.items():
        claim = export_claim(engine, clip_id)
        assert claim["state"] == "succeeded" and row["last_error"] is None
        assert claim["attempts"] == (2 if clip_id in interrupted else 1), (clip_id, claim, interrupted)
    for clip_id in [*interrupted, done[0]]:
        check_export(proxy, rows[clip_id], tmp_path)


def test_an_approved_clip_is_exported_frame_exact(
    engine: Engine, proxy: Proxy, reviewer: Reviewer, export_worker: Worker, tmp_path: Path
) -> None:
    film = add_video(proxy, "Beach day: take #2/final", (40, 37, 51, 30))
    exported = film.clips[1:3]  # frames [40, 77) and [77, 128): neither starts at 0
    review(reviewer, ReviewActionKind.APPROVE, *exported)
    review(reviewer, ReviewActionKind.SKIP, film.clips[0])
    queued_by_review(engine, exported)

    wait_for(lambda: all_in(engine, exported, "exported"), timeout=60, what="the exports", logs=[export_worker.log])
    rows = clips(engine, film.clips)
    for clip_id in exported:
        row = rows[clip_id]
        assert row["clip_filepath"] == f"clips/Beach_day_take_2_final_{row['clip_identifier']}.mp4"
        assert row["last_error"] is None
        check_export(proxy, row, tmp_path)
        claim = export_claim(engine, clip_id)
        assert (claim["state"], claim["attempts"]) == ("succeeded", 1)
        assert claim_row(engine, Stage.KEYFRAMES.key, clip_id) is not None, "keyframes were not scheduled"
    skipped, pending = rows[film.clips[0]], rows[film.clips[3]]
    assert (skipped["ingest_state"], pending["ingest_state"]) == ("review_skipped", "pending_review")
    assert skipped["clip_filepath"] is None and pending["clip_filepath"] is None
    assert clip_keys() == sorted(rows[i]["clip_filepath"] for i in exported)


def test_a_complete_object_from_a_crashed_run_is_not_uploaded_again(
    engine: Engine, proxy: Proxy, reviewer: Reviewer, export_worker: Worker, tmp_path: Path
) -> None:
    film = add_video(proxy, "Again", (45, 55, 60))
    crashed, stale = film.clips[0], film.clips[1]
    review(reviewer, ReviewActionKind.APPROVE, crashed)
    wait_for(lambda: all_in(engine, [crashed], "exported"), timeout=60, what="the export", logs=[export_worker.log])
    key = clips(engine, [crashed])[crashed]["clip_filepath"]

    # Mark the stored object, so that even an upload of the very same bytes would show.
    storage = get_storage()
    info = storage.head(key)
    assert info is not None
    storage.client.copy_object(  # type: ignore[attr-defined]
        Bucket=storage.bucket,
        Key=key,
        CopySource={"Bucket": storage.bucket, "Key": key},
        Metadata={**info.metadata, "marker": "first-run"},
        MetadataDirective="REPLACE",
        ContentType="video/mp4",
    )
    before = head(key)
    assert before["Metadata"]["marker"] == "first-run"

    # As if the worker died after the upload, before the transaction that records it: the clip is still
    # `exporting` without a key, and its claim is a dead worker's whose lease has run out.
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE clips SET ingest_state = 'exporting', clip_filepath = NULL, "
                "processing_metadata = processing_metadata - 'export' WHERE id = :id"
            ),
            {"id": crashed},
        )
        connection.execute(
            text(
                "UPDATE job_claims SET state = 'running', worker_id = 'dead:1:1', "
                "lease_until = now() - interval '1 second' WHERE stage = :s AND entity_id = :id"
            ),
            {"s": EXPORT.key, "id": crashed},
        )
    # Another clip's key holds an object of some other cut (the wrong frame count): that one is redone.
    stale_key = f"clips/Again_{clips(engine, [stale])[stale]['clip_identifier']}.mp4"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not this clip")
    storage.upload_file(junk, stale_key, content_type="video/mp4", metadata={"frames": "3", "marker": "junk"})
    review(reviewer, ReviewActionKind.APPROVE, stale)  # its approval sends its export

    assert dispatch()[EXPORT.key] == 1, "the crashed run's clip is sent again"
    both = [crashed, stale]
    wait_for(lambda: all_in(engine, both, "exported"), timeout=60, what="the re-run", logs=[export_worker.log])

    after = head(key)
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    assert after["Metadata"]["marker"] == "first-run", "the complete object was uploaded again"
    rows = clips(engine, both)
    assert rows[crashed]["clip_filepath"] == key and rows[crashed]["last_error"] is None
    assert rows[crashed]["processing_metadata"]["export"]["frames"] == 45
    assert export_claim(engine, crashed)["attempts"] == 2
    assert f"clip.export {crashed}: {key} is already complete" in export_worker.log.read_text()
    redone = head(stale_key)
    assert redone["Metadata"]["frames"] == "55" and "marker" not in redone["Metadata"]
    assert rows[stale]["clip_filepath"] == stale_key
    check_export(proxy, rows[stale], tmp_path)
    assert clip_keys() == sorted([key, stale_key])


SIGNED = re.compile(r"X-Amz-|Signature=|Expires=|Key-Pair-Id|Policy=", re.IGNORECASE)  # what a signed URL carries


def test_a_failing_export_retries_then_fails_alone_and_a_retry_recovers_it(
    engine: Engine,
    proxy: Proxy,
    reviewer: Reviewer,
    export_worker: Worker,
    app_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """The shared worker allows 2 attempts, 0.5 s apart. The flow runs to the end first, the failure's
    details are checked last, so one wrong detail does not hide the rest."""
    broken = add_video(proxy, "Lost proxy", (50, 50), upload=False)  # its proxy object is gone from S3
    fine = add_video(proxy, "Fine", (60, 40))
    bad, good = broken.clips[0], fine.clips[1]
    with collected_events(app_env["REDIS_URL"]) as heard:
        review(reviewer, ReviewActionKind.APPROVE, bad, good)
        wait_for(
            lambda: states(engine, [bad, good]) == {bad: "export_failed", good: "exported"},
            timeout=60,
            what="the bad clip to fail and the good one to export",
            logs=[export_worker.log],
        )
        wait_for(
            lambda: any(e["type"] == "stage.failed" and e["final"] for e in heard),
            timeout=10,
            what="the final failure event",
        )
    failures = [e["final"] for e in heard if e["type"] == "stage.failed" and e["entity_id"] == bad]
    failed_claim = export_claim(engine, bad)
    error = clips(engine, [bad])[bad]["last_error"]
    assert failed_claim["state"] == "failed" and error, (failed_claim, error)
    good_row = clips(engine, [good])[good]
    assert good_row["last_error"] is None
    assert clip_keys() == [good_row["clip_filepath"]], "the failure left nothing behind in S3"
    assert dispatch()[EXPORT.key] == 0, "a failed export waits for a person"

    get_storage().upload_file(proxy.path, broken.proxy_key, content_type="video/mp4")
    with unit_of_work() as session:
        assert clips_service.retry(session, bad) is EXPORT
    assert dispatch()[EXPORT.key] == 1
    wait_for(lambda: all_in(engine, [bad], "exported"), timeout=60, what="the retried export", logs=[export_worker.log])
    row = clips(engine, [bad])[bad]
    assert row["last_error"] is None
    check_export(proxy, row, tmp_path)
    assert export_claim(engine, bad)["attempts"] == 1, "a person's retry starts a fresh budget"

    # The failure itself: retried with backoff up to the cap, then a readable error without a signed URL.
    assert not SIGNED.search(error), f"the clip's error shows a signed URL: {error}"
    assert not SIGNED.search(failed_claim["last_error"]), f"the claim shows a signed URL: {failed_claim['last_error']}"
    assert len(error) < 500 and "proxy" in error.lower(), error
    assert (failures, failed_claim["attempts"]) == ([False, True], 2), "the export was not retried"


def test_a_group_decided_in_review_survives_export(
    engine: Engine, proxy: Proxy, reviewer: Reviewer, export_worker: Worker, tmp_path: Path
) -> None:
    film = add_video(proxy, "Pair", (35, 45, 25))
    first, second = film.clips[0], film.clips[1]
    review(reviewer, ReviewActionKind.GROUP, second)  # the clip and the one before it, approved as a pair
    assert clips(engine, [first])[first]["grouped_with_clip_id"] == second
    queued_by_review(engine, [first, second])

    pair = [first, second]
    wait_for(lambda: all_in(engine, pair, "exported"), timeout=60, what="the pair's exports", logs=[export_worker.log])
    rows = clips(engine, pair)
    assert rows[first]["grouped_with_clip_id"] == second and rows[second]["grouped_with_clip_id"] == first
    for clip_id, other in ((first, second), (second, first)):
        assert head(rows[clip_id]["clip_filepath"])["Metadata"]["grouped-with"] == str(other)
        check_export(proxy, rows[clip_id], tmp_path)
    assert states(engine, [film.clips[2]]) == {film.clips[2]: "pending_review"}
