"""The chunked proxy through real workers: clips become reviewable while later chunks encode and never
change afterwards, a killed worker's chunk (and no other) is redone, and two workers share one video."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from heaters.adapters import get_playback_cache, get_storage
from heaters.db import unit_of_work
from heaters.playback import service as playback
from tests.fixtures.workers import (
    chunk_rows,
    claim_row,
    clip_rows,
    collected_events,
    run_cli,
    running_chunk,
    video_row,
    wait_for,
)
from tests.media import synth

SCENE = 45  # frames per scene at 30 fps: cuts every 1.5 s


def _done(engine: Engine, video_id: int) -> bool:
    row = video_row(engine, video_id)
    return row["ingest_state"] == "encoded" and not row["needs_splicing"]


def _boundaries(clips: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(c["start_frame"], c["end_frame"]) for c in clips]


def _expected(source: synth.SynthVideo) -> list[tuple[int, int]]:
    bounds = [0, *source.cuts, source.frame_count]
    return list(pairwise(bounds))


def _frame_count(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout.strip())


def _has_audio(path: Path) -> bool:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=index", "-of", "csv=p=0",
         str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return bool(out.stdout.strip())


def test_clips_are_reviewable_while_later_chunks_encode_and_never_change(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    source = synth.make_cut_video(
        tmp_path / "long-cuts.mp4", fps=Fraction(30), scene_frames=[SCENE] * 16, width=1280, height=720
    )
    env = {"PROXY_CHUNK_SECONDS": "2", "MASTER_ENABLED": "false"}
    worker = start_worker(queues="media_processing,temp_clips,default", **env)
    seen: dict[int, tuple[int, int]] = {}
    temp_clip: dict[str, Any] = {}

    def _record(into: dict[int, tuple[int, int]]) -> bool:
        for clip in clip_rows(engine, video_id):
            into.setdefault(clip["id"], (clip["start_frame"], clip["end_frame"]))
        return False

    def first_clips_then_a_temp_clip() -> bool:
        _record(seen)
        if not seen:
            return False
        if not temp_clip:  # asked for while the video is still being encoded
            chunks = chunk_rows(engine, video_id)
            temp_clip["chunks_pending"] = sum(1 for c in chunks if c["encoded_at"] is None)
            temp_clip["state"] = video_row(engine, video_id)["ingest_state"]
            first = min(seen, key=lambda i: seen[i][0])
            with unit_of_work() as session:
                playback.request(session, [first])
            temp_clip["clip"] = first
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT state, filename, error FROM temp_clips WHERE clip_id = :c"), {"c": temp_clip["clip"]}
            ).first()
        assert row is None or row[0] != "failed", row
        if row is not None and row[0] == "ready":
            temp_clip["filename"] = row[1]
            return True
        return False

    with collected_events(pipeline_env["REDIS_URL"]) as events:
        video_id = int(run_cli({**pipeline_env, **env}, "ingest", str(source.path)).stdout.strip())
        wait_for(first_clips_then_a_temp_clip, timeout=180, what="the first clip's temp clip", logs=[worker.log])
        wait_for(lambda: _record(seen) or _done(engine, video_id), timeout=240, what="the video to finish",
                 logs=[worker.log])  # fmt: skip

    chunks = chunk_rows(engine, video_id)
    assert len(chunks) == 12 and all(c["encoded_at"] is not None for c in chunks)
    assert temp_clip["state"] == "encoding" and temp_clip["chunks_pending"] > 0, temp_clip
    ready = [e for e in events if e["type"] == "video.clips_ready" and e["video_id"] == video_id]
    assert len(ready) > 1, "the clips should arrive in several steps, as the chunks are scanned"
    assert sum(e["clips"] for e in ready) == 16

    clips = clip_rows(engine, video_id)
    assert _boundaries(clips) == _expected(source)
    for clip in clips:  # every clip shown while encoding is still the same clip
        assert seen[clip["id"]] == (clip["start_frame"], clip["end_frame"])
    assert set(seen) == {c["id"] for c in clips}
    assert [c["clip_identifier"] for c in clips] == [f"{video_id}_segment_{i:03d}" for i in range(1, 17)]

    video = video_row(engine, video_id)
    assert video["frame_count"] == source.frame_count and video["proxy_filepath"]
    storage = get_storage()
    assert storage.list_keys(f"proxy_chunks/{video_id}/") == [], "joined chunks are removed"
    proxy = tmp_path / "proxy.mp4"
    storage.download_file(video["proxy_filepath"], proxy)
    assert _frame_count(proxy) == source.frame_count and _has_audio(proxy)

    cut = get_playback_cache().path(temp_clip["filename"])
    start, end = seen[temp_clip["clip"]]
    assert _frame_count(cut) == end - start and _has_audio(cut)


def _kill_point(engine: Engine, video_id: int) -> bool:
    """At least one chunk done and another one running: the moment to kill the worker."""
    return any(c["encoded_at"] for c in chunk_rows(engine, video_id)) and running_chunk(engine, video_id) is not None


def test_a_worker_killed_mid_chunk_redoes_that_chunk_only(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    work_root: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    source = synth.make_cut_video(
        tmp_path / "kill.mp4", fps=Fraction(30), scene_frames=[150] * 6, width=1920, height=1080
    )
    env = {"PROXY_CHUNK_SECONDS": "5", "MASTER_ENABLED": "false"}
    first = start_worker(**env)
    video_id = int(run_cli({**pipeline_env, **env}, "ingest", str(source.path)).stdout.strip())
    wait_for(lambda: _kill_point(engine, video_id), timeout=180, what="a chunk to run after one is done",
             logs=[first.log])  # fmt: skip
    first.kill()

    chunks = chunk_rows(engine, video_id)
    killed = [c for c in chunks if (claim_row(engine, "video.encode_chunk", c["id"]) or {}).get("state") == "running"]
    assert len(killed) == 1 and killed[0]["encoded_at"] is None
    done_before = {c["id"] for c in chunks if c["encoded_at"] is not None}
    clips_before = {c["id"]: (c["start_frame"], c["end_frame"]) for c in clip_rows(engine, video_id)}

    second = start_worker(**env)

    def redispatched() -> bool:  # the killed worker's lease (10 s) runs out; then the sweep sends it again
        sent = json.loads(run_cli({**pipeline_env, **env}, "dispatch").stdout)
        return bool(sent.get("video.encode_chunk"))

    wait_for(redispatched, timeout=60, what="the killed chunk to be sent again", logs=[second.log])
    wait_for(lambda: _done(engine, video_id), timeout=240, what="the video to complete", logs=[second.log])

    for chunk in chunk_rows(engine, video_id):
        claim = claim_row(engine, "video.encode_chunk", chunk["id"])
        assert claim is not None and claim["state"] == "succeeded"
        assert claim["attempts"] == (2 if chunk["id"] == killed[0]["id"] else 1), (chunk["chunk_index"], claim)
    assert done_before <= {c["id"] for c in chunks}
    clips = clip_rows(engine, video_id)
    assert _boundaries(clips) == _expected(source)
    assert len({c["clip_identifier"] for c in clips}) == len(clips) == 6
    for clip_id, bounds in clips_before.items():
        assert next(c for c in clips if c["id"] == clip_id)["start_frame"] == bounds[0]
    proxy = tmp_path / "proxy.mp4"
    get_storage().download_file(video_row(engine, video_id)["proxy_filepath"], proxy)
    assert _frame_count(proxy) == source.frame_count
    wait_for(lambda: not any(work_root.iterdir()), timeout=20, what="the orphaned work directory to be swept")


def test_two_workers_share_the_chunks_of_one_video(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    source = synth.make_cut_video(
        tmp_path / "shared.mp4", fps=Fraction(25), scene_frames=[50, 37, 63, 50, 50, 75, 25, 50], width=1280, height=720
    )
    env = {"PROXY_CHUNK_SECONDS": "2", "MASTER_ENABLED": "false"}  # 50 frames a chunk: cuts on boundaries too
    workers = [start_worker(**env), start_worker(queues="media_processing", **env)]
    video_id = int(run_cli({**pipeline_env, **env}, "ingest", str(source.path)).stdout.strip())
    wait_for(lambda: _done(engine, video_id), timeout=240, what="the video to finish", logs=[w.log for w in workers])

    done_by = [w.log.read_text().count("video.encode_chunk.finished") for w in workers]
    assert all(done_by) and sum(done_by) == len(chunk_rows(engine, video_id)) == 8, done_by
    clips = clip_rows(engine, video_id)
    assert _boundaries(clips) == _expected(source)

    # The same result as one worker encoding the chunks one after another: the same frames in the proxy.
    from heaters.media.probe import probe
    from heaters.media.scene_scores import analysis_size
    from heaters.videos.chunk_encode import encode_chunk, join_chunks
    from heaters.videos.chunking import plan_chunks

    info = probe(source.path, timeout=60)
    size = analysis_size(info.width, info.height)
    parts = []
    for index, (start, end) in enumerate(plan_chunks(source.frame_count, 50)):
        chunk = encode_chunk(str(source.path), tmp_path / f"c{index}", fps=Fraction(25), start_frame=start,
                             end_frame=end, analysis_size=size, detector="adaptive", crf=28, timeout=120)  # fmt: skip
        assert chunk.path is not None
        parts.append(chunk.path)
    alone = join_chunks(parts, str(source.path), tmp_path, fps=Fraction(25), expected_frames=source.frame_count,
                        source_info=info, timeout=120)  # fmt: skip
    shared = tmp_path / "shared-proxy.mp4"
    get_storage().download_file(video_row(engine, video_id)["proxy_filepath"], shared)
    assert _framemd5(shared) == _framemd5(alone.path)


def _framemd5(path: Path) -> list[str]:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line.rsplit(",", 1)[-1].strip() for line in out.stdout.splitlines() if line and not line.startswith("#")]


def test_a_failed_chunk_fails_the_video_and_a_retry_keeps_what_was_done(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    source = synth.make_cut_video(
        tmp_path / "retry.mp4", fps=Fraction(30), scene_frames=[150] * 6, width=1920, height=1080
    )
    env = {"PROXY_CHUNK_SECONDS": "5", "MASTER_ENABLED": "false"}
    worker = start_worker(**env)
    video_id = int(run_cli({**pipeline_env, **env}, "ingest", str(source.path)).stdout.strip())
    wait_for(lambda: any(c["encoded_at"] for c in chunk_rows(engine, video_id)), timeout=180,
             what="a first chunk", logs=[worker.log])  # fmt: skip
    original = video_row(engine, video_id)["filepath"]
    storage = get_storage()
    storage.delete(original)  # the rest of the chunks cannot read their part any more

    wait_for(lambda: video_row(engine, video_id)["ingest_state"] == "encoding_failed", timeout=180,
             what="the video to fail", logs=[worker.log])  # fmt: skip
    failed = video_row(engine, video_id)
    assert failed["last_error"].startswith("Chunk "), failed["last_error"]
    assert "Traceback" not in failed["last_error"] and len(failed["last_error"]) < 500
    kept = {c["id"] for c in chunk_rows(engine, video_id) if c["encoded_at"] is not None}
    assert kept and len(kept) < 6
    shown = {c["id"]: (c["start_frame"], c["end_frame"]) for c in clip_rows(engine, video_id)}

    storage.upload_file(source.path, original)  # the file is back: a retry finishes the video
    result = run_cli({**pipeline_env, **env}, "retry", str(video_id))
    assert result.returncode == 0, result.stderr
    wait_for(lambda: _done(engine, video_id), timeout=240, what="the retried video", logs=[worker.log])

    for chunk in chunk_rows(engine, video_id):
        claim = claim_row(engine, "video.encode_chunk", chunk["id"])
        assert claim is not None and claim["state"] == "succeeded"
        if chunk["id"] in kept:
            assert claim["attempts"] == 1, "a chunk encoded before the failure was encoded again"
    clips = clip_rows(engine, video_id)
    assert _boundaries(clips) == _expected(source)
    for clip_id, bounds in shown.items():  # the clips shown before the failure are still the same clips
        assert next((c["start_frame"], c["end_frame"]) for c in clips if c["id"] == clip_id) == bounds
    assert video_row(engine, video_id)["last_error"] is None
