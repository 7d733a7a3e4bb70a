"""/review in a real Chromium against a real `heaters web` and a real temp_clips worker.

Each test gets a fresh database with one video: a real all-intra proxy (encoded once per session) in the
test bucket, and its clips and cuts as scene detection writes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import Engine, text

from heaters.adapters import get_storage
from heaters.auth.service import create_user
from heaters.db import unit_of_work
from heaters.models import Role, SourceVideo
from heaters.videos.encode import encode_proxy
from heaters.videos.stages import write_cuts_and_clips
from tests.browser.test_sign_in import sign_in
from tests.fixtures.workers import wait_for
from tests.media import synth

pytestmark = pytest.mark.browser

FPS = Fraction(25)
# Frames per scene: 14 clips, more than two reviewers' queues hold (6 each), so both get clips.
SCENES = (40, 30, 45, 35, 50, 38, 30, 42, 36, 33, 44, 31, 39, 34)


@dataclass(frozen=True)
class Proxy:
    path: Path
    frame_count: int
    width: int
    height: int
    duration: float


@pytest.fixture(scope="session")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Proxy:
    folder = tmp_path_factory.mktemp("review_media")
    source = synth.make_cut_video(folder / "source.mp4", fps=FPS, scene_frames=SCENES, width=320, height=180)
    made = encode_proxy(source.path, folder, crf=28, timeout=300, on_progress=None)
    info = made.info
    assert info.fps == FPS and info.frame_count == sum(SCENES)
    return Proxy(made.path, info.frame_count, info.width, info.height, info.duration_seconds)


def add_video(proxy: Proxy, title: str, scenes: tuple[int, ...], key: str = "proxies/review_test_proxy.mp4") -> int:
    """A video row on the proxy (the first `sum(scenes)` frames of it), cut into `scenes`."""
    if get_storage().size(key) is None:
        get_storage().upload_file(proxy.path, key)
    frames = sum(scenes)
    with unit_of_work() as session:
        row = SourceVideo(
            title=title,
            ingest_state="encoded",
            needs_splicing=False,
            proxy_filepath=key,
            fps_num=FPS.numerator,
            fps_den=FPS.denominator,
            frame_count=frames,
            duration_seconds=float(frames / FPS),
            width=proxy.width,
            height=proxy.height,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        cuts, frame = [], 0
        for length in scenes[:-1]:
            frame += length
            cuts.append((frame, 30.0 + frame / 10))
        write_cuts_and_clips(session, row.id, cuts, frames)
        return row.id


@pytest.fixture
def video(engine: Engine, pipeline_env: dict[str, str], proxy: Proxy) -> int:
    """One encoded, cut video (the bucket was emptied for this test by pipeline_env)."""
    return add_video(proxy, "Beach day", SCENES)


@pytest.fixture
def reviewers(engine: Engine) -> None:
    with unit_of_work() as session:
        create_user(session, "vera", "vera-password", role=Role.REVIEWER)
        create_user(session, "otto", "otto-password", role=Role.REVIEWER)


@pytest.fixture
def temp_worker(start_worker: Callable[..., Any]) -> Any:
    return start_worker(queues="temp_clips")


def clips(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, start_frame, end_frame, ingest_state AS state, grouped_with_clip_id AS grouped "
                "FROM clips ORDER BY start_frame, id"
            )
        ).mappings()
        return [dict(r) for r in rows]


def state_of(engine: Engine, clip_id: int) -> str:
    return next(c["state"] for c in clips(engine) if c["id"] == clip_id)


def shown_clip(page: Page) -> int:
    """The clip the current <video> element plays."""
    return int(page.locator('[data-testid="player"]').get_attribute("data-clip-id") or 0)


def shown_frame(page: Page) -> int:
    label = page.locator('[data-testid="current-frame"]').inner_text()
    match = re.search(r"(\d[\d,]*)$", label)
    assert match, f"no frame number in {label!r}"
    return int(match.group(1).replace(",", ""))


def open_review(page: Page, web_url: str, user: str = "vera", path: str = "/review") -> None:
    sign_in(page, web_url, user, f"{user}-password")
    expect(page.locator("#current-user")).to_have_text(user)
    page.goto(f"{web_url}{path}")
    playable(page)


def settled(page: Page) -> None:
    """Wait until the frame a step asked for is on screen; say what the player saw if it never is."""
    try:
        page.wait_for_function("() => window.heatersReview.settled")
    except PlaywrightTimeout:
        raise AssertionError(f"never settled: {page.evaluate('() => window.heatersReview.debug')}") from None


def playable(page: Page) -> None:
    """The current clip's <video> has decoded a frame, and the frame label shows a number."""
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=\"player\"]');"
        " return v && v.readyState >= 2 && v.dataset.clipId; }",
        timeout=60_000,
    )
    expect(page.locator('[data-testid="current-frame"]')).to_have_text(re.compile(r"\d$"))


def test_a_temp_clip_plays_frame_exactly_and_keys_decide_and_undo(
    page: Page, web_url: str, reviewers: None, video: int, temp_worker: Any, engine: Engine
) -> None:
    open_review(page, web_url)
    first = clips(engine)[0]
    assert shown_clip(page) == first["id"]
    duration = page.locator('[data-testid="player"]').evaluate("v => v.duration")
    frames = first["end_frame"] - first["start_frame"]
    assert abs(duration - frames / float(FPS)) <= 1 / float(FPS), (duration, frames)
    assert first["start_frame"] <= shown_frame(page) < first["end_frame"]
    expect(page.locator("#review-position")).to_have_text(f"Clip 1 of {len(SCENES)} in this video")
    expect(page.locator("#pending-total")).to_have_text(str(len(SCENES)))

    decided: list[int] = []
    for key, state in (("a", "review_approved"), ("s", "review_skipped"), ("d", "review_archived")):
        clip = shown_clip(page)
        page.keyboard.press(key)
        wait_for(lambda clip=clip, state=state: state_of(engine, clip) == state, timeout=30, what=f"{key} on {clip}")
        expect(page.locator('[data-testid="player"]')).not_to_have_attribute("data-clip-id", str(clip))
        decided.append(clip)
    expect(page.locator("#pending-total")).to_have_text(str(len(SCENES) - 3))
    expect(page.locator("#nav-pending")).to_have_text(str(len(SCENES) - 3))

    for clip in reversed(decided):  # undo, three levels deep, each clip back on screen
        page.keyboard.press("Control+z")
        wait_for(lambda clip=clip: state_of(engine, clip) == "pending_review", timeout=30, what=f"undo of {clip}")
        expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", str(clip))
    playable(page)
    expect(page.locator("#pending-total")).to_have_text(str(len(SCENES)))
    page.reload()  # the undo history is in the database, not in the tab
    playable(page)
    page.keyboard.press("Control+z")
    expect(page.locator("#review-message")).to_contain_text("Nothing to undo")


def test_split_at_the_frame_reached_with_the_arrow_keys(
    page: Page, web_url: str, reviewers: None, video: int, temp_worker: Any, engine: Engine
) -> None:
    open_review(page, web_url)
    clip = clips(engine)[0]
    page.keyboard.press("ArrowRight")  # pauses and enters split mode
    expect(page.locator(".review-split-hint")).to_be_visible()
    settled(page)
    start = shown_frame(page)
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("ArrowLeft")
    target = min(start + 3 + 10 - 1, clip["end_frame"] - 1)
    expect(page.locator('[data-testid="current-frame"]')).to_have_text(re.compile(rf"\b{target:,}$"))
    if target == clip["start_frame"]:
        pytest.fail("the steps landed on the clip's first frame; the scene lengths are too short for this test")
    page.keyboard.press("Enter")
    wait_for(lambda: state_of(engine, clip["id"]) == "archived", timeout=30, what="the split")
    with engine.connect() as connection:
        cut = connection.execute(text("SELECT frame_number, source FROM cuts WHERE source = 'reviewer'")).one()
    assert cut == (target, "reviewer")
    halves = [c for c in clips(engine) if c["state"] == "pending_review" and c["start_frame"] < clip["end_frame"]]
    assert [(h["start_frame"], h["end_frame"]) for h in halves[:2]] == [
        (clip["start_frame"], target),
        (target, clip["end_frame"]),
    ]
    expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", str(halves[0]["id"]))
    expect(page.locator(".review-cut.reviewer")).to_have_count(1)

    page.keyboard.press("Control+z")
    expect(page.locator("#review-message")).to_contain_text("Undone")
    wait_for(lambda: state_of(engine, clip["id"]) == "pending_review", timeout=30, what="the undone split")
    expect(page.locator(".review-cut.reviewer")).to_have_count(0)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM cuts WHERE source = 'reviewer'")).scalar_one() == 0
    assert len(clips(engine)) == len(SCENES)


def test_merge_with_the_previous_clip_and_undo(
    page: Page, web_url: str, reviewers: None, video: int, temp_worker: Any, engine: Engine
) -> None:
    open_review(page, web_url)
    expect(page.get_by_role("button", name=re.compile("^Merge"))).to_be_disabled()  # the first clip: frame 0
    page.keyboard.press("m")
    expect(page.locator("#review-message")).to_contain_text("Merge is not available")
    first, second = clips(engine)[:2]
    assert state_of(engine, first["id"]) == "pending_review"

    page.keyboard.press("a")
    expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", str(second["id"]))
    expect(page.get_by_role("button", name=re.compile("^Merge"))).to_be_enabled()
    cuts = page.locator(".review-cut")
    expect(cuts).to_have_count(len(SCENES) - 1)
    page.keyboard.press("m")
    wait_for(lambda: state_of(engine, second["id"]) == "archived", timeout=30, what="the merge")
    expect(cuts).to_have_count(len(SCENES) - 2)  # the timeline lost the merged-away cut, without a reload
    merged = next(c for c in clips(engine) if c["state"] == "pending_review" and c["start_frame"] == 0)
    assert merged["end_frame"] == second["end_frame"]
    assert state_of(engine, first["id"]) == "archived"
    expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", str(merged["id"]))
    playable(page)

    page.keyboard.press("Control+z")
    wait_for(lambda: state_of(engine, second["id"]) == "pending_review", timeout=30, what="the undone merge")
    expect(cuts).to_have_count(len(SCENES) - 1)
    assert state_of(engine, first["id"]) == "review_approved"
    assert merged["id"] not in {c["id"] for c in clips(engine)}
    with engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM cuts WHERE frame_number = :f"), {"f": second["start_frame"]}
            ).scalar_one()
            == 1
        )


def test_two_reviewers_get_different_clips_and_see_each_other_live(
    browser: Browser, web_url: str, reviewers: None, video: int, temp_worker: Any, engine: Engine
) -> None:
    vera_context, otto_context = browser.new_context(), browser.new_context()
    try:
        vera, otto = vera_context.new_page(), otto_context.new_page()
        open_review(vera, web_url, "vera")
        open_review(otto, web_url, "otto")
        assert shown_clip(vera) != shown_clip(otto)
        with engine.connect() as connection:
            holders = connection.execute(text("SELECT holder, count(*) FROM review_leases GROUP BY holder")).all()
        assert sorted(n for _, n in holders) == [6, 6]  # the current clip and five prepared ahead, each

        expect(otto.locator("#pending-total")).to_have_text(str(len(SCENES)))
        clip = shown_clip(vera)
        vera.keyboard.press("a")
        wait_for(lambda: state_of(engine, clip) == "review_approved", timeout=30, what="vera's approval")
        # No reload on otto's side: the counts, the nav and the timeline follow by server push.
        expect(otto.locator("#pending-total")).to_have_text(str(len(SCENES) - 1))
        expect(otto.locator("#nav-pending")).to_have_text(str(len(SCENES) - 1))
        segment = otto.locator(f'[data-testid="timeline-segment"][data-clip-id="{clip}"]')
        expect(segment).to_have_attribute("data-tone", "approved")
    finally:
        vera_context.close()
        otto_context.close()


def test_keys_do_nothing_while_a_text_field_has_focus(
    page: Page, web_url: str, reviewers: None, video: int, temp_worker: Any, engine: Engine
) -> None:
    open_review(page, web_url)
    clip = shown_clip(page)
    page.keyboard.press("s")  # outside a field the key acts: proof the page listens
    wait_for(lambda: state_of(engine, clip) == "review_skipped", timeout=30, what="the skip")
    expect(page.locator("#review-message")).to_contain_text(f"Skipped clip {clip}")
    page.evaluate(
        "() => { const i = document.createElement('input'); i.id = 'note'; document.body.appendChild(i); i.focus(); }"
    )
    page.keyboard.type("as d")
    expect(page.locator("#note")).to_have_value("as d")
    page.keyboard.press("Control+z")  # the field's own undo, not ours
    page.keyboard.press("Enter")
    page.locator("#note").blur()
    page.keyboard.press("?")  # a barrier: the server handles a tab's events in order, so anything the
    expect(page.locator("#review-help")).to_be_visible()  # keys above had sent would have run by now
    states = [c["state"] for c in clips(engine)]
    assert states.count("review_skipped") == 1 and states.count("review_approved") == 0
    assert states.count("review_archived") == 0 and state_of(engine, clip) == "review_skipped"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM review_actions")).scalar_one() == 1


def test_a_failed_temp_clip_shows_its_error_and_a_retry(
    page: Page, web_url: str, reviewers: None, video: int, temp_worker: Any, engine: Engine
) -> None:
    get_storage().delete("proxies/review_test_proxy.mp4")  # the proxy is gone: every cut must fail
    sign_in(page, web_url, "vera", "vera-password")
    expect(page.locator("#current-user")).to_have_text("vera")
    page.goto(f"{web_url}/review")
    error = page.locator("#temp-clip-error")
    expect(error).to_contain_text("could not be prepared", timeout=60_000)
    first = clips(engine)[0]["id"]
    failed_name = _temp_clip(engine, first)
    assert failed_name[1] == "failed"
    page.get_by_role("button", name="Retry").click()
    # A new generation under a new name, which fails again and is shown again.
    wait_for(
        lambda: _temp_clip(engine, first)[0] != failed_name[0] and _temp_clip(engine, first)[1] == "failed",
        timeout=60,
        what="the retried cut to fail again",
    )
    expect(error).to_contain_text("could not be prepared", timeout=60_000)


def _temp_clip(engine: Engine, clip_id: int) -> tuple[str, str]:
    """The clip's temp clip: (file name, state)."""
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT filename, state FROM temp_clips WHERE clip_id = :c"), {"c": clip_id}
        ).one()
    return str(row[0]), str(row[1])


def test_an_upload_does_not_hold_up_another_reviewers_action(
    browser: Browser,
    web_url: str,
    reviewers: None,
    video: int,
    temp_worker: Any,
    engine: Engine,
    tmp_path: Path,
) -> None:
    """Ordering only: the reviewer's approval commits while the other tab's upload is still being ingested."""
    big = tmp_path / "camera.mp4"
    with big.open("wb") as handle:
        for _ in range(40):
            handle.write(bytes(range(256)) * 40960)  # 400 MiB
    uploader_context, reviewer_context = browser.new_context(), browser.new_context()
    try:
        uploader, reviewer = uploader_context.new_page(), reviewer_context.new_page()
        open_review(reviewer, web_url, "vera")
        sign_in(uploader, web_url, "otto", "otto-password")
        expect(uploader.locator("#current-user")).to_have_text("otto")
        uploader.goto(f"{web_url}/videos")
        uploader.locator("#video-upload input[type=file]").set_input_files(str(big))
        uploader.get_by_role("button", name="Upload").click()
        wait_for(lambda: _upload_started(uploader), timeout=120, what="the upload to reach the server")

        clip = shown_clip(reviewer)
        reviewer.keyboard.press("a")
        wait_for(lambda: state_of(engine, clip) == "review_approved", timeout=30, what="the approval")
        with engine.connect() as connection:
            ingested = connection.execute(text("SELECT count(*) FROM source_videos")).scalar_one()
        assert ingested == 1, "the approval waited for the upload's ingest to finish"
        expect(uploader.get_by_text("camera.mp4: video 2 queued for encoding.")).to_be_visible(timeout=180_000)
    finally:
        uploader_context.close()
        reviewer_context.close()


def _upload_started(page: Page) -> bool:
    """The Upload button shows its spinner once the server has the files and is ingesting them."""
    return bool(page.locator("button[data-loading], button:has(.rt-Spinner)").count())


def test_the_queue_by_video_by_clip_and_an_empty_queue_that_still_offers_undo(
    page: Page, web_url: str, reviewers: None, video: int, temp_worker: Any, engine: Engine, proxy: Proxy
) -> None:
    second = add_video(proxy, "Harbour", (40, 30))
    open_review(page, web_url, path=f"/review?video={second}")
    expect(page.locator("#review-title")).to_have_text("Harbour")
    own = [c["id"] for c in clips(engine) if c["id"] > len(SCENES)]
    for clip in own:
        expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", str(clip))
        playable(page)
        page.keyboard.press("a")
        wait_for(lambda clip=clip: state_of(engine, clip) == "review_approved", timeout=30, what="the approval")
    expect(page.locator("#review-empty")).to_be_visible()
    expect(page.get_by_text("No clip of this video is waiting for review.")).to_be_visible()
    undo = page.get_by_role("button", name=re.compile("^Undo"))
    expect(undo).to_be_enabled()
    undo.click()
    wait_for(lambda: state_of(engine, own[-1]) == "pending_review", timeout=30, what="the undo")
    expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", str(own[-1]))

    middle = [c["id"] for c in clips(engine) if c["id"] <= len(SCENES)][4]
    page.goto(f"{web_url}/review?clip={middle}")
    expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", str(middle))
    playable(page)
    expect(page.locator("#review-position")).to_have_text(f"Clip 5 of {len(SCENES)} in this video")


def test_closing_the_tab_gives_its_clips_back(
    browser: Browser, web_url: str, reviewers: None, video: int, temp_worker: Any, engine: Engine
) -> None:
    context = browser.new_context()
    page = context.new_page()
    open_review(page, web_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM review_leases")).scalar_one() == 6
    context.close()

    def released() -> bool:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM review_leases")).scalar_one() == 0

    wait_for(released, timeout=60, what="the closed tab's leases to end")


def test_a_refused_action_goes_back_and_says_why(
    page: Page, web_url: str, reviewers: None, video: int, temp_worker: Any, engine: Engine
) -> None:
    open_review(page, web_url)
    clip = shown_clip(page)
    with engine.begin() as connection:  # changed behind the page's back: no event tells the page
        connection.execute(text("UPDATE clips SET ingest_state = 'review_archived' WHERE id = :id"), {"id": clip})
    page.keyboard.press("a")
    expect(page.locator("#review-message")).to_contain_text(f"Clip {clip} is no longer waiting for review")
    expect(page.locator('[data-testid="player"]')).not_to_have_attribute("data-clip-id", str(clip))
    assert state_of(engine, clip) == "review_archived"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM review_actions")).scalar_one() == 0


LEVELS = 27  # frame n is grey level 16 + 8 * (n mod 27): distinct steps far above compression noise


@pytest.fixture(scope="session")
def ramp_proxy(tmp_path_factory: pytest.TempPathFactory) -> Proxy:
    """A proxy whose every frame says its own number in its brightness."""
    from heaters.media.tools import run_tool

    folder = tmp_path_factory.mktemp("ramp")
    source = folder / "ramp.mp4"
    run_tool(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "color=c=black:s=96x64:r=25:d=12",
            "-vf", f"format=gray,geq=lum='16+8*mod(N,{LEVELS})',format=yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "50", str(source),
        ],
        timeout=120,
    )  # fmt: skip
    made = encode_proxy(source, folder, crf=18, timeout=300, on_progress=None)
    info = made.info
    return Proxy(made.path, info.frame_count, info.width, info.height, info.duration_seconds)


def _level_on_screen(page: Page) -> int:
    """The grey level of the frame the player shows, read back from its pixels."""
    red = page.locator('[data-testid="player"]').evaluate(
        """v => { const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
                  const x = c.getContext('2d'); x.drawImage(v, 0, 0);
                  return x.getImageData(c.width >> 1, c.height >> 1, 1, 1).data[0]; }"""
    )
    # Headless Chromium (software compositing) hands the grey's luma through unchanged: R = Y = 16 + 8k.
    return round((red - 16) / 8)


def test_the_frame_label_is_the_frame_on_screen(
    page: Page,
    web_url: str,
    reviewers: None,
    engine: Engine,
    pipeline_env: dict[str, str],
    ramp_proxy: Proxy,
    temp_worker: Any,
) -> None:
    """Stepping, playing and pausing: the label always names the frame whose pixels are shown."""
    add_video(ramp_proxy, "Ramp", (120, ramp_proxy.frame_count - 120), key="proxies/ramp_proxy.mp4")
    open_review(page, web_url)
    page.keyboard.press("a")  # the second clip starts at frame 120: absolute and local numbers differ
    expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", "2")
    playable(page)
    checked = 0
    for key in ("ArrowRight", "ArrowRight", "Shift+ArrowRight", "ArrowLeft", "Shift+ArrowRight", "ArrowRight",
                "Shift+ArrowLeft", "Space", "Space", "ArrowRight", "Space", "Space"):  # fmt: skip
        page.keyboard.press(key)
        if key == "Space":
            playing = not page.locator('[data-testid="player"]').evaluate("v => v.paused")
            if playing:  # let it play a few frames before the next pause
                before = page.evaluate("() => window.heatersReview.frame")
                page.wait_for_function(f"() => window.heatersReview.frame >= {before + 4}")
                continue
        settled(page)
        frame = shown_frame(page)
        assert 120 <= frame < ramp_proxy.frame_count
        assert _level_on_screen(page) == frame % LEVELS, f"label says {frame} after {key}"
        checked += 1
    assert checked >= 9
