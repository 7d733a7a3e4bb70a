"""Crashes and races: a SIGKILLed worker mid-encode (single pass), and Dispatcher ticks while work is running."""

from __future__ import annotations

import json
import time
from fractions import Fraction
from pathlib import Path

from sqlalchemy import Engine

from heaters.adapters import get_storage
from tests.fixtures.workers import claim_row, clip_rows, run_cli, video_row, wait_for
from tests.media import synth

# The single-pass encode (a chunk killed mid-encode: tests/pipeline/test_chunked_pipeline.py).
SINGLE_PASS = {"MASTER_ENABLED": "false", "PROXY_CHUNK_SECONDS": "0"}


def _long_source(tmp_path: Path) -> synth.SynthVideo:
    """Big enough that its proxy encode runs for several seconds on two cores."""
    return synth.make_pattern_video(tmp_path / "long.mp4", fps=Fraction(30), frames=1500, width=1920, height=1080)


def _encoding_with_progress(engine: Engine, video_id: int) -> bool:
    row = video_row(engine, video_id)
    return row["ingest_state"] == "encoding" and (row["progress"] or 0) >= 3


def _done(engine: Engine, video_id: int) -> bool:
    row = video_row(engine, video_id)
    return row["ingest_state"] == "encoded" and not row["needs_splicing"]


def test_a_worker_killed_mid_encode_is_replaced_and_the_video_completes(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    work_root: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    source = _long_source(tmp_path)
    first = start_worker(**SINGLE_PASS)
    video_id = int(run_cli(pipeline_env, "ingest", str(source.path)).stdout.strip())
    wait_for(
        lambda: _encoding_with_progress(engine, video_id), timeout=120, what="the encode to start", logs=[first.log]
    )

    first.kill()
    assert any(work_root.iterdir()), "the killed encode should have left its work directory behind"
    claim = claim_row(engine, "video.encode", video_id)
    assert claim is not None and claim["state"] == "running" and claim["attempts"] == 1

    second = start_worker(**SINGLE_PASS)
    time.sleep(11)  # the killed worker's 10 s lease runs out; nothing extends it any more
    result = run_cli({**pipeline_env, **SINGLE_PASS}, "dispatch")
    sent = json.loads(result.stdout)
    assert sent["video.encode"] == 1, (
        claim_row(engine, "video.encode", video_id),
        video_row(engine, video_id),
        result.stderr,
    )
    wait_for(lambda: _done(engine, video_id), timeout=240, what="the video to complete", logs=[second.log])

    claim = claim_row(engine, "video.encode", video_id)
    assert claim is not None and claim["state"] == "succeeded" and claim["attempts"] == 2
    proxies = [k for k in get_storage().list_keys("proxies/") if k.endswith(f"_{video_id}_proxy.mp4")]
    assert len(proxies) == 1
    clips = clip_rows(engine, video_id)
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == [(0, 1500)]
    wait_for(lambda: not any(work_root.iterdir()), timeout=10, what="the orphaned work directory to be swept")


def test_a_dispatcher_tick_during_a_running_encode_sends_nothing(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    source = _long_source(tmp_path)
    worker = start_worker(MASTER_ENABLED="false")
    video_id = int(run_cli(pipeline_env, "ingest", str(source.path)).stdout.strip())
    wait_for(
        lambda: _encoding_with_progress(engine, video_id), timeout=120, what="the encode to start", logs=[worker.log]
    )

    for _ in range(2):  # two schedulers' worth of sweeps while the encode holds its claim
        sent = json.loads(run_cli({**pipeline_env, "MASTER_ENABLED": "false"}, "dispatch").stdout)
        assert set(sent) >= {"video.download", "video.encode", "video.detect_scenes", "temp_clips.generate"}
        assert not any(sent.values()), sent

    wait_for(lambda: _done(engine, video_id), timeout=240, what="the video to complete", logs=[worker.log])
    claim = claim_row(engine, "video.encode", video_id)
    assert claim is not None and claim["attempts"] == 1
    assert worker.log.read_text().count(f"video.encode.started {video_id}") <= 1
