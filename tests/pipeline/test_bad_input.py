"""Bad input fails visibly and alone; awkward but valid input is handled."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from fractions import Fraction
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine

from heaters.adapters import get_storage
from heaters.devstack.service import free_port
from tests.fixtures.workers import claim_row, clip_rows, run_cli, video_row, wait_for
from tests.media import synth

FAILED = {"download_failed", "encoding_failed", "detect_scenes_failed"}


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local web server (the only network these tests have) serving a plain HTML page."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "page.html").write_text("<html><body><p>No video here, just words.</p></body></html>")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = synth.make_cut_video(tmp_path / "for-truncation.mp4", fps=Fraction(25), scene_frames=(40, 40))
    return {
        "zero-byte": (synth.make_zero_byte(tmp_path / "empty.mp4"), "empty (0 bytes)"),
        "text": (synth.make_text_as_mp4(tmp_path / "notes.mp4"), "not a video FFmpeg can read"),
        "truncated": (synth.make_truncated_mp4(good.path, tmp_path / "truncated.mp4"), "incomplete"),
        "audio-only": (synth.make_audio_only(tmp_path / "song.m4a"), "no video stream (audio only)"),
        "still-image": (synth.make_still_png(tmp_path / "photo.png"), "still image"),
        "one-frame": (synth.make_one_frame_video(tmp_path / "blink.mp4"), "only 1 frame"),
    }


def _settled(engine: Engine, video_id: int) -> bool:
    row = video_row(engine, video_id)
    return row["ingest_state"] in FAILED or (row["ingest_state"] == "encoded" and not row["needs_splicing"])


def test_bad_inputs_fail_with_a_human_message_and_harm_nothing_else(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    work_root: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    web_root: tuple[str, Path],
) -> None:
    base_url, _ = web_root
    worker = start_worker(MASTER_ENABLED="false")
    good = synth.make_cut_video(tmp_path / "good.mp4", fps=Fraction(30), scene_frames=(45, 45, 45))
    cases = {name: (str(path), expected, "encoding_failed") for name, (path, expected) in _bad_files(tmp_path).items()}
    # Nothing listens there: a network failure (transient, so retried), then the final message says so.
    unreachable_url = f"http://127.0.0.1:{free_port()}/video.mp4"
    cases["unreachable-url"] = (unreachable_url, "The video could not be downloaded right now: ", "download_failed")
    cases["unsupported-url"] = (f"{base_url}/page.html", "No downloadable video was found", "download_failed")

    ids: dict[str, int] = {}
    for name, (source, _, _) in cases.items():
        result = run_cli(pipeline_env, "ingest", source, "--title", name)
        assert result.returncode == 0, (name, result.stderr)
        ids[name] = int(result.stdout.strip())
    good_id = int(run_cli(pipeline_env, "ingest", str(good.path)).stdout.strip())

    for name, video_id in [*ids.items(), ("good", good_id)]:
        wait_for(lambda v=video_id: _settled(engine, v), timeout=240, what=f"{name} to settle", logs=[worker.log])

    for name, (_, expected, state) in cases.items():
        row = video_row(engine, ids[name])
        assert row["ingest_state"] == state, (name, row["ingest_state"], row["last_error"])
        assert row["last_error"] and expected in row["last_error"], (name, row["last_error"])
        assert "Traceback" not in row["last_error"] and len(row["last_error"]) < 500
        assert row["proxy_filepath"] is None and clip_rows(engine, ids[name]) == []
    unreachable = video_row(engine, ids["unreachable-url"])
    assert "Attempt" not in unreachable["last_error"]  # the final message, not a retry note
    assert "Connection refused" in unreachable["last_error"], unreachable["last_error"]  # why, in yt-dlp's words

    assert [(c["start_frame"], c["end_frame"]) for c in clip_rows(engine, good_id)] == [(0, 45), (45, 90), (90, 135)]
    proxies = get_storage().list_keys("proxies/")
    assert proxies == [video_row(engine, good_id)["proxy_filepath"]]
    assert list(work_root.iterdir()) == []


def test_a_failed_video_can_be_retried(
    engine: Engine,
    start_worker,
    pipeline_env: dict[str, str],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    worker = start_worker(MASTER_ENABLED="false")
    empty = synth.make_zero_byte(tmp_path / "empty.mp4")
    video_id = int(run_cli(pipeline_env, "ingest", str(empty)).stdout.strip())
    wait_for(lambda: _settled(engine, video_id), timeout=60, what="the failure", logs=[worker.log])
    assert video_row(engine, video_id)["ingest_state"] == "encoding_failed"

    refused = run_cli(pipeline_env, "retry", "999999")
    assert refused.returncode == 1 and "does not exist" in refused.stderr and "Traceback" not in refused.stderr
    retried = run_cli(pipeline_env, "retry", str(video_id))
    assert retried.returncode == 0, retried.stderr
    wait_for(
        lambda: (
            claim_row(engine, "video.encode", video_id)["state"] == "failed"
            and video_row(engine, video_id)["ingest_state"] == "encoding_failed"
        ),
        timeout=60,
        what="the second failure",
        logs=[worker.log],
    )
    claim = claim_row(engine, "video.encode", video_id)
    assert claim is not None and claim["attempts"] == 1  # the retry started a fresh attempt budget

    worker.stop()  # nothing picks it up now, so the video stays where retry puts it
    assert run_cli(pipeline_env, "retry", str(video_id)).returncode == 0
    assert video_row(engine, video_id)["ingest_state"] == "downloaded"
    not_failed = run_cli(pipeline_env, "retry", str(video_id))
    assert not_failed.returncode == 1 and "cannot move to retry: it is downloaded" in not_failed.stderr


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        (
            "portrait-odd",
            lambda p: synth.make_pattern_video(p, fps=Fraction(30), frames=45, width=721, height=1281),
            (720, 1278),
        ),
        (
            "60fps",
            lambda p: synth.make_pattern_video(p, fps=Fraction(60), frames=90, width=320, height=180),
            (320, 180),
        ),
        (
            "4k",
            lambda p: synth.make_pattern_video(p, fps=Fraction(30), frames=30, width=3840, height=2160),
            (1280, 720),
        ),
        ("vfr", lambda p: synth.make_vfr_video(p), None),
    ],
)
def test_awkward_but_valid_input_is_handled(
    name: str,
    make,
    expected: tuple[int, int] | None,
    engine: Engine,
    start_worker,  # type: ignore[no-untyped-def]
    pipeline_env: dict[str, str],
    tmp_path: Path,
) -> None:
    worker = start_worker(MASTER_ENABLED="false")
    made = make(tmp_path / f"{name}.mp4")
    path = made if isinstance(made, Path) else made.path
    video_id = int(run_cli(pipeline_env, "ingest", str(path)).stdout.strip())
    wait_for(lambda: _settled(engine, video_id), timeout=180, what=f"{name} to finish", logs=[worker.log])
    row = video_row(engine, video_id)
    assert row["ingest_state"] == "encoded", row["last_error"]
    assert row["width"] % 2 == 0 and row["height"] % 2 == 0
    assert max(row["width"], row["height"]) <= 1280 and min(row["width"], row["height"]) <= 720
    if expected:
        assert (row["width"], row["height"]) == expected
    clips = clip_rows(engine, video_id)
    assert clips and clips[0]["start_frame"] == 0 and clips[-1]["end_frame"] == row["frame_count"]
