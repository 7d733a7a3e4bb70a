"""The archival master never stands between another video and its review (it has a queue of its own)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from sqlalchemy import Engine, text

from tests.fixtures.workers import clip_rows, run_cli, video_row, wait_for
from tests.media import synth


def _master_running(engine: Engine, video_id: int) -> bool:
    with engine.connect() as connection:
        state = connection.execute(
            text("SELECT state FROM job_claims WHERE stage = 'video.encode_master' AND entity_id = :i"),
            {"i": video_id},
        ).scalar_one_or_none()
    return state == "running"


def test_a_second_video_is_reviewable_while_the_first_ones_master_encodes(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    # A 1080p source whose full-size master takes far longer than a small video's whole path to review.
    big = synth.make_cut_video(
        tmp_path / "big.mp4", fps=Fraction(30), scene_frames=(300, 300), width=1920, height=1080, audio=False
    )
    small = synth.make_cut_video(tmp_path / "small.mp4", fps=Fraction(25), scene_frames=(30, 40, 30))
    worker = start_worker()  # one worker host: media_processing, default and archival, one thread each

    first = run_cli(pipeline_env, "ingest", str(big.path), "--title", "Big")
    assert first.returncode == 0, first.stderr
    big_id = int(first.stdout.strip())
    wait_for(lambda: _master_running(engine, big_id), timeout=300, what="the big video's master", logs=[worker.log])

    second = run_cli(pipeline_env, "ingest", str(small.path), "--title", "Small")
    assert second.returncode == 0, second.stderr
    small_id = int(second.stdout.strip())

    def reviewable() -> bool:
        clips = clip_rows(engine, small_id)
        return len(clips) == 3 and all(c["ingest_state"] == "pending_review" for c in clips)

    wait_for(reviewable, timeout=180, what="the small video's clips", logs=[worker.log])
    # It did not wait for the master: that one is still encoding, on its own queue.
    assert _master_running(engine, big_id)
    assert video_row(engine, big_id)["master_filepath"] is None
    assert [(c["start_frame"], c["end_frame"]) for c in clip_rows(engine, small_id)] == [(0, 30), (30, 70), (70, 100)]
