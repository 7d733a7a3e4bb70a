"""SIGTERM to `heaters worker` (a deploy, Ctrl-C) lets the running job finish instead of killing it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from sqlalchemy import Engine, text

from tests.fixtures.workers import claim_row, run_cli, running_chunk, wait_for
from tests.media import synth


def test_a_stopped_worker_finishes_its_running_job_first(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    source = synth.make_cut_video(
        tmp_path / "stop.mp4", fps=Fraction(30), scene_frames=[150] * 4, width=1920, height=1080
    )
    env = {"PROXY_CHUNK_SECONDS": "5", "MASTER_ENABLED": "false"}
    worker = start_worker(queues="media_processing", **env)
    video_id = int(run_cli({**pipeline_env, **env}, "ingest", str(source.path)).stdout.strip())
    chunk_id = wait_for(lambda: running_chunk(engine, video_id), timeout=180, what="a chunk to run",
                        logs=[worker.log])  # fmt: skip

    worker.stop()  # SIGTERM to `heaters worker`, as Render and Ctrl-C send it

    log = worker.log.read_text()
    assert worker.proc.returncode == 0, log[-3000:]
    assert "Killing worker process" not in log, log[-3000:]
    claim = claim_row(engine, "video.encode_chunk", chunk_id)
    assert claim is not None and claim["state"] == "succeeded" and claim["attempts"] == 1, claim
    with engine.connect() as connection:
        encoded = connection.execute(text("SELECT encoded_at FROM proxy_chunks WHERE id = :c"), {"c": chunk_id})
        assert encoded.scalar() is not None, "the running chunk was not finished before the worker stopped"
