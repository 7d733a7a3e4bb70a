"""`heaters ingest file.mp4` through real workers: clips in pending_review, exact to the frame."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import Engine

from heaters.adapters import get_storage
from tests.fixtures.workers import clip_rows, collected_events, run_cli, video_row, wait_for
from tests.media import synth

# Scenes of irregular lengths: the cuts are their running sums.
SCENES = (37, 29, 41, 33, 26, 45, 30)
CUTS = (37, 66, 107, 140, 166, 211)
TOTAL = sum(SCENES)


def _ready(engine: Engine, video_id: int) -> bool:
    row = video_row(engine, video_id)
    return row["ingest_state"] == "encoded" and not row["needs_splicing"] and row["master_filepath"] is not None


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30), Fraction(30000, 1001)], ids=["25", "30", "29.97"])
def test_ingested_file_becomes_exact_pending_clips(
    fps: Fraction,
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    source = synth.make_cut_video(tmp_path / f"cuts-{float(fps):.2f}.mp4", fps=fps, scene_frames=SCENES)
    worker = start_worker()
    with collected_events(pipeline_env["REDIS_URL"]) as events:
        result = run_cli(pipeline_env, "ingest", str(source.path), "--title", "Cut test")
        assert result.returncode == 0, result.stderr
        video_id = int(result.stdout.strip())
        wait_for(lambda: _ready(engine, video_id), timeout=180, what="the video to finish", logs=[worker.log])

    video = video_row(engine, video_id)
    assert Fraction(video["fps_num"], video["fps_den"]) == fps
    assert video["frame_count"] == TOTAL
    assert video["last_error"] is None and video["progress"] is None

    clips = clip_rows(engine, video_id)
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == list(zip((0, *CUTS), (*CUTS, TOTAL), strict=True))
    assert [c["clip_identifier"] for c in clips] == [f"{video_id}_segment_{i:03d}" for i in range(1, 8)]
    assert {c["ingest_state"] for c in clips} == {"pending_review"}

    storage = get_storage()
    for key in (video["filepath"], video["proxy_filepath"], video["master_filepath"]):
        assert storage.size(key), f"{key} is not in S3"
    assert video["proxy_filepath"] == f"proxies/Cut_test_{video_id}_proxy.mp4"

    progress = [
        e["progress"]
        for e in events
        if e["type"] == "video.progress" and e["video_id"] == video_id and e["stage"] == "video.encode"
    ]
    assert progress, "no encode progress was published"
    assert max(progress) >= 99 and all(0 <= p <= 100 for p in progress)
    assert any(e["type"] == "video.clips_ready" and e["clips"] == 7 for e in events)

    shown = json.loads(run_cli(pipeline_env, "videos", "show", str(video_id), "--json").stdout)
    assert shown["state"] == "encoded" and shown["frame_count"] == TOTAL and len(shown["clips"]) == 7
    assert {"id", "title", "state", "last_error", "fps", "frame_count", "progress", "clips"} <= set(shown)
    assert set(shown["clips"][0]) >= {"id", "identifier", "start_frame", "end_frame", "state"}
    listed = json.loads(run_cli(pipeline_env, "videos", "list", "--json").stdout)
    assert [v["id"] for v in listed] == [video_id]


def test_the_same_file_twice_is_one_video(engine: Engine, pipeline_env: dict[str, str], tmp_path: Path) -> None:
    source = synth.make_cut_video(tmp_path / "same.mp4", fps=Fraction(25), scene_frames=(30, 30))
    first = run_cli(pipeline_env, "ingest", str(source.path))
    copy = synth.copy_as(source.path, tmp_path / "renamed copy.mp4")
    second = run_cli(pipeline_env, "ingest", str(copy))
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    assert first.stdout.strip() == second.stdout.strip()
    assert "Already ingested" in second.stderr
    listed = json.loads(run_cli(pipeline_env, "videos", "list", "--json").stdout)
    assert len(listed) == 1


def test_running_detection_again_creates_nothing_new(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from sqlalchemy import text

    source = synth.make_cut_video(tmp_path / "again.mp4", fps=Fraction(25), scene_frames=(30, 40, 30))
    worker = start_worker(MASTER_ENABLED="false")
    video_id = int(run_cli(pipeline_env, "ingest", str(source.path)).stdout.strip())
    wait_for(
        lambda: video_row(engine, video_id)["spliced_at"] is not None, timeout=120, what="detection", logs=[worker.log]
    )
    before = [(c["id"], c["start_frame"], c["end_frame"]) for c in clip_rows(engine, video_id)]

    with engine.begin() as connection:  # as if the flag had been lost after the clips were written
        connection.execute(
            text("UPDATE source_videos SET needs_splicing = true, spliced_at = NULL WHERE id = :i"), {"i": video_id}
        )
        connection.execute(text("UPDATE job_claims SET state = 'succeeded' WHERE stage = 'video.detect_scenes'"))
    sent = json.loads(run_cli({**pipeline_env, "MASTER_ENABLED": "false"}, "dispatch").stdout)
    assert sent["video.detect_scenes"] == 1
    wait_for(
        lambda: video_row(engine, video_id)["spliced_at"] is not None,
        timeout=60,
        what="the second run",
        logs=[worker.log],
    )
    assert [(c["id"], c["start_frame"], c["end_frame"]) for c in clip_rows(engine, video_id)] == before
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT count(*) FROM cuts WHERE source_video_id = :i"), {"i": video_id}).scalar()
            == 2
        )
