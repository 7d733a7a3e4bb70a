"""/query and /clips in a real Chromium against a real `heaters web`.

Each test gets a fresh database with one video on a real all-intra proxy: 16 clips past the whole
pipeline (a stream-copied mp4 cut from the proxy in the bucket, a keyframe JPEG, an efficientnet-lite0
embedding), and one clip whose export failed. The embeddings are unit vectors whose angle to the first
clip is chosen, so the similarity order and every percentage on the page are known in advance.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import Engine, text

from heaters.adapters import get_storage
from heaters.auth.service import create_user
from heaters.clips.stages import save_embedding
from heaters.db import unit_of_work
from heaters.media.segments import copy_segment
from heaters.models import Role, SourceVideo
from heaters.models.states import GenerationStrategy
from heaters.storage import keys
from heaters.videos.encode import encode_proxy
from heaters.videos.stages import write_cuts_and_clips
from tests.browser.test_sign_in import sign_in
from tests.media import synth

pytestmark = pytest.mark.browser

FPS = Fraction(25)
EMBEDDED = 16  # clips with an exported file and embeddings
SCENES = (25,) * (EMBEDDED + 1)  # one second each; the last clip is the one whose export failed
TITLE = "Harbour walk"
PROXY_KEY = "proxies/query_test_proxy.mp4"
EFFNET, VIT = "efficientnet-lite0", "clip-vit-b32"
EFFNET_DIM, VIT_DIM = 1280, 512
STRATEGY = GenerationStrategy.KEYFRAME_MULTI_AVG
PAGE = 12
# Clip k (1..15) is at cosine PERCENTS[(7 * k) % 15] / 100 from clip 0: the similarity order is not the id order.
PERCENTS = tuple(96 - 5 * i for i in range(EMBEDDED - 1))  # 96, 91, ..., 26
VIT_COSINES = {4: 0.80, 8: 0.60}  # clip 0 and these have a clip-vit-b32 vector too
GROUPED = (2, 3)  # grouped with each other
EXPORT_ERROR = "The exported clip has 12 frames instead of 25."


def _cosine(index: int) -> float:
    return 1.0 if index == 0 else PERCENTS[(7 * index) % (EMBEDDED - 1)] / 100


def _unit(dim: int, cosine: float, axis: int) -> np.ndarray:
    """cosine along axis 0, the rest along its own axis: any two such vectors are at cos_a * cos_b."""
    vector = np.zeros(dim, dtype=np.float64)
    vector[0] = cosine
    if axis:
        vector[axis] = math.sqrt(1 - cosine * cosine)
    return vector


EFFNET_VECTORS = [_unit(EFFNET_DIM, _cosine(i), i) for i in range(EMBEDDED)]
VIT_VECTORS = {0: _unit(VIT_DIM, 1.0, 0), **{i: _unit(VIT_DIM, c, i) for i, c in VIT_COSINES.items()}}


@dataclass(frozen=True)
class Media:
    proxy: Path
    clips: tuple[Path, ...]  # the stream-copied mp4 of each embedded clip
    posters: tuple[Path, ...]


@dataclass(frozen=True)
class Library:
    video: int
    ids: tuple[int, ...]  # the embedded clips, in source order
    failed: int

    def expected(self, main: int, vectors: dict[int, np.ndarray] | None = None) -> list[tuple[int, float]]:
        """(clip, similarity) of every other clip with a vector, most similar first (ties by id)."""
        by_index = vectors if vectors is not None else dict(enumerate(EFFNET_VECTORS))
        by_id = {self.ids[i]: v for i, v in by_index.items()}
        query = by_id[main]
        found = [(clip, float(np.dot(query, v))) for clip, v in by_id.items() if clip != main]
        return sorted(found, key=lambda pair: (-pair[1], pair[0]))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    folder = tmp_path_factory.mktemp("query_media")
    source = synth.make_cut_video(folder / "source.mp4", fps=FPS, scene_frames=SCENES, width=320, height=180)
    made = encode_proxy(source.path, folder, crf=28, timeout=300, on_progress=None)
    assert made.info.fps == FPS and made.info.frame_count == sum(SCENES)
    clips, posters, start = [], [], 0
    for index, length in enumerate(SCENES[:EMBEDDED]):
        clip = folder / f"clip_{index}.mp4"
        copy_segment(
            made.path,
            clip,
            start_frame=start,
            end_frame=start + length,
            fps=FPS,
            frame_count=made.info.frame_count,
            timeout=60,
        )
        poster = folder / f"poster_{index}.jpg"
        Image.new("RGB", (320, 180), (20 + 14 * index, 90, 200 - 10 * index)).save(poster, "JPEG")
        clips.append(clip)
        posters.append(poster)
        start += length
    return Media(made.path, tuple(clips), tuple(posters))


@pytest.fixture
def library(engine: Engine, pipeline_env: dict[str, str], media: Media) -> Library:
    """The video, its clips in their states, their files in the (emptied) bucket and their embeddings.

    Tests ask for it before `page`, so the tab is closed before `engine` empties the tables.
    """
    storage = get_storage()
    storage.upload_file(media.proxy, PROXY_KEY, content_type="video/mp4")
    frames = sum(SCENES)
    now = datetime.now(UTC)
    with unit_of_work() as session:
        create_user(session, "rita", "rita-password", role=Role.REVIEWER)
        create_user(session, "ada", "ada-password", role=Role.ADMIN)
        video = SourceVideo(
            title=TITLE,
            ingest_state="encoded",
            needs_splicing=False,
            proxy_filepath=PROXY_KEY,
            fps_num=FPS.numerator,
            fps_den=FPS.denominator,
            frame_count=frames,
            duration_seconds=float(frames / FPS),
            width=320,
            height=180,
        )
        session.add(video)
        session.flush()
        assert video.id is not None
        cuts, frame = [], 0
        for length in SCENES[:-1]:
            frame += length
            cuts.append((frame, 30.0))
        write_cuts_and_clips(session, video.id, cuts, frames)
        rows = session.execute(
            text("SELECT id, clip_identifier FROM clips WHERE source_video_id = :v ORDER BY start_frame"),
            {"v": video.id},
        ).all()
        assert len(rows) == len(SCENES)
        ids = tuple(int(r.id) for r in rows[:EMBEDDED])
        for index, (clip_id, identifier) in enumerate(rows[:EMBEDDED]):
            key = keys.clip_key(TITLE, identifier, clip_id)
            storage.upload_file(media.clips[index], key, content_type="video/mp4")
            poster = keys.keyframe_key(clip_id, "multi", 1, run="a1")
            storage.upload_file(media.posters[index], poster, content_type="image/jpeg")
            session.execute(
                text(
                    "UPDATE clips SET ingest_state = 'embedded', clip_filepath = :key, reviewed_at = :now, "
                    "embedded_at = :now WHERE id = :id"
                ),
                {"key": key, "now": now, "id": clip_id},
            )
            session.execute(
                text(
                    "INSERT INTO clip_artifacts (clip_id, artifact_type, strategy, position, s3_key, metadata) "
                    "VALUES (:clip, 'keyframe', 'multi', 1, :key, '{}'::jsonb)"
                ),
                {"clip": clip_id, "key": poster},
            )
            save_embedding(session, clip_id, EFFNET, "test", STRATEGY, EFFNET_VECTORS[index].astype(np.float32))
            if index in VIT_VECTORS:
                save_embedding(session, clip_id, VIT, "test", STRATEGY, VIT_VECTORS[index].astype(np.float32))
        a, b = ids[GROUPED[0]], ids[GROUPED[1]]
        session.execute(
            text("UPDATE clips SET grouped_with_clip_id = CASE id WHEN :a THEN :b ELSE :a END WHERE id IN (:a, :b)"),
            {"a": a, "b": b},
        )
        failed = int(rows[EMBEDDED].id)
        session.execute(
            text(
                "UPDATE clips SET ingest_state = 'export_failed', last_error = :error, reviewed_at = :now "
                "WHERE id = :id"
            ),
            {"error": EXPORT_ERROR, "now": now, "id": failed},
        )
        return Library(video.id, ids, failed)


# ---- helpers ------------------------------------------------------------------------------------------

PLAYER = '[data-testid="player"]'
CARDS = '[data-testid="similar-card"]'
GRID_JS = (
    "() => [...document.querySelectorAll('[data-testid=\"similar-card\"]')].map(c => "
    "[Number(c.dataset.clipId), (c.querySelector('[data-testid=\"similarity\"]') || {}).textContent || null])"
)


def open_as(page: Page, web_url: str, user: str, path: str) -> None:
    sign_in(page, web_url, user, f"{user}-password")
    expect(page.locator("#current-user")).to_have_text(user)
    page.goto(f"{web_url}{path}")


def main_clip(page: Page) -> int:
    return int(page.locator(PLAYER).get_attribute("data-clip-id") or 0)


def shows(page: Page, clip: int) -> None:
    """The main <video> is `clip`'s and has decoded a frame of it (its file is in the bucket and loads)."""
    player = page.locator(PLAYER)
    expect(player).to_have_attribute("data-clip-id", str(clip))
    try:
        page.wait_for_function(
            "id => { const v = document.querySelector('[data-testid=\"player\"]');"
            " return v && v.dataset.clipId === id && v.readyState >= 2; }",
            arg=str(clip),
            timeout=60_000,
        )
    except PlaywrightTimeout:
        raise AssertionError(f"clip {clip} never loaded: {_player_state(page)}") from None


def plays(page: Page, clip: int) -> None:
    """`shows`, and the video plays by itself (the page autoplays it, muted and looped): its time moves on."""
    shows(page, clip)
    start = page.locator(PLAYER).evaluate("v => v.currentTime")
    advancing = (
        "t => { const v = document.querySelector('[data-testid=\"player\"]');"
        " return !v.paused && v.currentTime !== t; }"
    )
    try:
        page.wait_for_function(advancing, arg=start, timeout=10_000)
    except PlaywrightTimeout:
        before = _player_state(page)
        page.locator(PLAYER).evaluate("v => v.play()")  # is it the file, or the page that never starts it?
        page.wait_for_function(advancing, arg=start)
        raise AssertionError(
            f"clip {clip} never started playing by itself, though it plays when play() is called: {before}"
        ) from None


def _player_state(page: Page) -> dict[str, object]:
    return page.locator(PLAYER).evaluate(
        "v => ({src: v.currentSrc, ready: v.readyState, paused: v.paused, time: v.currentTime,"
        " autoplay: v.autoplay, muted: v.muted, error: v.error && v.error.message})"
    )


def grid(page: Page) -> list[tuple[int, str]]:
    return [(int(clip), str(badge)) for clip, badge in page.evaluate(GRID_JS)]


def wait_grid(page: Page, expected: list[tuple[int, str]]) -> None:
    """The grid holds exactly these cards, in this order: (clip id, similarity badge)."""
    want = [[clip, badge] for clip, badge in expected]
    try:
        page.wait_for_function(
            f"want => JSON.stringify(({GRID_JS})()) === JSON.stringify(want)", arg=want, timeout=20_000
        )
    except PlaywrightTimeout:
        raise AssertionError(f"grid is {grid(page)}, expected {want}; {_seen(page)}") from None


def wait_similar(page: Page, expected: list[tuple[int, float]]) -> None:
    """The grid holds these clips in this order, each badge its similarity in percent.

    The index compares in half precision: a badge may round the other way when the exact value is
    within a few hundredths of a percent of .5, so badges are checked to 0.6 points here; `wait_grid`
    checks them exactly where the vectors were made for whole percentages.
    """
    ids = [clip for clip, _ in expected]
    try:
        page.wait_for_function(
            f"want => JSON.stringify(({GRID_JS})().map(c => c[0])) === JSON.stringify(want)",
            arg=ids,
            timeout=20_000,
        )
    except PlaywrightTimeout:
        raise AssertionError(f"grid is {grid(page)}, expected ids {ids}; {_seen(page)}") from None
    for (clip, similarity), (_, badge) in zip(expected, grid(page), strict=True):
        assert re.fullmatch(r"\d{1,3}%", badge), (clip, badge)
        assert abs(int(badge[:-1]) - similarity * 100) <= 0.6, (clip, badge, similarity)


def _seen(page: Page) -> str:
    note = page.locator("#query-note")
    return f"note {note.inner_text() if note.count() else None!r}, url {page.url}"


def badges(pairs: list[tuple[int, float]]) -> list[tuple[int, str]]:
    return [(clip, f"{round(similarity * 100)}%") for clip, similarity in pairs]


def expect_in_url(tab: Page, /, **params: object) -> None:
    """The address bar (which the page rewrites after each search) comes to hold these parameters."""
    for name, value in params.items():
        expect(tab).to_have_url(re.compile(rf"[?&]{name}={re.escape(str(value))}(&|$)"))


def url_params(page: Page) -> dict[str, str]:
    query = page.url.split("?", 1)[1] if "?" in page.url else ""
    return dict(part.split("=", 1) for part in query.split("&") if "=" in part)


def choose(page: Page, current: str, option: str) -> None:
    """Pick `option` in the Radix select now showing `current`."""
    page.get_by_role("combobox").filter(has_text=re.compile(rf"^{re.escape(current)}$")).click()
    page.get_by_role("option", name=option, exact=True).click()


def no_error_page(page: Page) -> None:
    expect(page.get_by_role("heading", name="Similar clips")).to_be_visible()
    expect(page.get_by_text(re.compile("Application error|Traceback|Internal Server Error"))).to_have_count(0)


# ---- /query -------------------------------------------------------------------------------------------


def test_a_clip_plays_and_its_neighbours_come_in_similarity_order_twelve_a_page(
    library: Library, page: Page, web_url: str
) -> None:
    first = library.ids[0]
    expected = library.expected(first)
    assert len(expected) == EMBEDDED - 1
    # The vectors were made for these exact percentages; the order is not the id order.
    assert [f"{round(s * 100)}%" for _, s in expected] == [f"{p}%" for p in PERCENTS]
    assert [c for c, _ in expected] != sorted(c for c, _ in expected)

    open_as(page, web_url, "rita", f"/query?clip={first}")
    shows(page, first)
    expect(page.locator("#query-main")).to_contain_text(TITLE)
    wait_grid(page, badges(expected[:PAGE]))
    expect(page.locator("#query-page")).to_have_text("Page 1")
    expect(page.locator("#query-prev")).to_be_disabled()
    first_page = {c for c, _ in expected[:PAGE]}

    page.locator("#query-next").click()
    wait_grid(page, badges(expected[PAGE:]))
    expect(page.locator("#query-page")).to_have_text("Page 2")
    expect(page.locator("#query-next")).to_be_disabled()
    expect(page).to_have_url(re.compile(r"[?&]page=2(&|$)"))
    second_page = {clip for clip, _ in grid(page)}
    assert not first_page & second_page and first_page | second_page == set(library.ids) - {first}
    assert main_clip(page) == first

    page.locator("#query-prev").click()
    wait_grid(page, badges(expected[:PAGE]))
    page.locator("#query-sort").click()  # least similar first: the same clips from the other end
    expect(page.locator("#query-sort")).to_have_text("Least similar first")
    wait_grid(page, badges(expected[::-1][:PAGE]))
    expect(page).to_have_url(re.compile(r"[?&]sort=dissimilar(&|$)"))
    assert main_clip(page) == first
    plays(page, first)  # the main clip plays by itself, muted and looped


def test_a_card_becomes_the_main_clip_and_its_link_can_be_shared(
    library: Library, page: Page, web_url: str, browser: Browser
) -> None:
    first = library.ids[0]
    open_as(page, web_url, "rita", f"/query?clip={first}")
    shows(page, first)
    wait_grid(page, badges(library.expected(first)[:PAGE]))
    chosen = library.expected(first)[2][0]
    page.locator(f'{CARDS}[data-clip-id="{chosen}"]').click()

    shows(page, chosen)
    expect(page).to_have_url(re.compile(rf"[?&]clip={chosen}(&|$)"))
    expect_in_url(page, page=1)
    expected = library.expected(chosen)
    wait_similar(page, expected[:PAGE])
    assert first in {c for c, _ in expected[:PAGE]}

    shared = page.url
    page.reload()
    shows(page, chosen)
    wait_similar(page, expected[:PAGE])
    assert page.url == shared

    # Another signed-in tab opening the link sees the same search.
    context = browser.new_context()
    try:
        other = context.new_page()
        sign_in(other, web_url, "ada", "ada-password")
        expect(other.locator("#current-user")).to_have_text("ada")
        other.goto(shared)
        shows(other, chosen)
        wait_similar(other, expected[:PAGE])
    finally:
        context.close()

    grouped, partner = library.ids[GROUPED[0]], library.ids[GROUPED[1]]
    page.goto(f"{web_url}/query?clip={grouped}")
    shows(page, grouped)
    expect(page.locator("#query-main")).to_contain_text(f"Grouped with clip #{partner}")


def test_without_a_clip_a_random_embedded_clip_is_picked_and_put_in_the_url(
    library: Library, page: Page, web_url: str
) -> None:
    open_as(page, web_url, "rita", "/query")
    expect(page).to_have_url(re.compile(r"[?&]clip=[1-9]\d*(&|$)"))
    picked = int(url_params(page)["clip"])
    assert picked in library.ids, (picked, library.ids)  # never the failed clip, which has no file nor vector
    shows(page, picked)
    expect_in_url(page, model=EFFNET, strategy=STRATEGY.value)
    wait_similar(page, library.expected(picked)[:PAGE])

    # A new pick is again a real clip, and the URL follows it. The pick may be the same clip again, so the
    # sort toggled after it is the sign it has been handled (a tab's events are handled in order).
    page.locator("#query-shuffle").click()
    page.locator("#query-sort").click()
    expect(page.locator("#query-sort")).to_have_text("Least similar first")
    expect(page).to_have_url(re.compile(r"[?&]sort=dissimilar(&|$)"))
    again = int(url_params(page)["clip"])
    assert again in library.ids, (again, library.ids)
    shows(page, again)
    wait_similar(page, library.expected(again)[::-1][:PAGE])


def test_the_model_filter_shows_only_clips_of_that_variant_or_says_the_clip_lacks_it(
    library: Library, page: Page, web_url: str
) -> None:
    first, lacking = library.ids[0], library.ids[1]
    vit = library.expected(first, VIT_VECTORS)
    assert badges(vit) == [(library.ids[4], "80%"), (library.ids[8], "60%")]

    # The model in a link: only clips with a clip-vit-b32 vector, at their clip-vit-b32 similarity.
    open_as(page, web_url, "rita", f"/query?clip={first}&model={VIT}")
    shows(page, first)
    wait_grid(page, badges(vit))
    expect(page.locator("#query-note")).to_have_count(0)
    expect_in_url(page, model=VIT, strategy=STRATEGY.value)
    no_error_page(page)

    # A main clip without that variant: the page says so, and still shows the clip.
    page.goto(f"{web_url}/query?clip={lacking}&model={VIT}")
    shows(page, lacking)
    expect(page.locator("#query-note")).to_have_text(f"Clip {lacking} has no {VIT} / {STRATEGY.value} embedding yet.")
    expect(page.locator(CARDS)).to_have_count(0)
    no_error_page(page)

    # The same through the model select: back to efficientnet-lite0, then clip-vit-b32 again.
    choose(page, VIT, EFFNET)
    wait_similar(page, library.expected(lacking)[:PAGE])
    expect(page.locator("#query-note")).to_have_count(0)
    expect(page.get_by_role("combobox").nth(1)).to_have_text(STRATEGY.value)
    no_error_page(page)

    page.goto(f"{web_url}/query?clip={first}")
    shows(page, first)
    wait_grid(page, badges(library.expected(first)[:PAGE]))
    choose(page, EFFNET, VIT)
    wait_grid(page, badges(vit))
    expect_in_url(page, model=VIT, strategy=STRATEGY.value)
    assert main_clip(page) == first
    no_error_page(page)


# ---- /clips -------------------------------------------------------------------------------------------


def _card(page: Page, clip: int) -> Locator:
    return page.locator(f'[data-testid="clip-card"][data-clip-id="{clip}"]')


def test_clips_lists_states_groups_errors_and_retry_for_admins_only(
    library: Library, page: Page, web_url: str, browser: Browser, engine: Engine
) -> None:
    open_as(page, web_url, "ada", "/clips")
    cards = page.locator('[data-testid="clip-card"]')
    expect(cards).to_have_count(len(SCENES))
    ids = [int(c.get_attribute("data-clip-id") or 0) for c in cards.all()]
    assert ids == [*library.ids, library.failed]
    expect(page.locator('[data-testid="clip-state"]')).to_have_text(["embedded"] * EMBEDDED + ["export_failed"])
    a, b = library.ids[GROUPED[0]], library.ids[GROUPED[1]]
    expect(page.locator('[data-testid="clip-group"]')).to_have_count(2)
    expect(_card(page, a).locator('[data-testid="clip-group"]')).to_have_text(f"Grouped with #{b}")
    expect(_card(page, b).locator('[data-testid="clip-group"]')).to_have_text(f"Grouped with #{a}")
    expect(page.locator('[data-testid="clip-error"]')).to_have_count(1)
    failed = _card(page, library.failed)
    expect(failed.locator('[data-testid="clip-error"]')).to_have_text(EXPORT_ERROR)
    expect(page.get_by_role("button", name="Retry")).to_have_count(1)
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    poster = _card(page, library.ids[0]).locator("video").get_attribute("poster") or ""
    assert "artifacts/keyframes/" in poster, poster

    # A reviewer sees the error but gets no Retry.
    context = browser.new_context()
    try:
        rita = context.new_page()
        open_as(rita, web_url, "rita", "/clips")
        expect(rita.locator('[data-testid="clip-card"]')).to_have_count(len(SCENES))
        expect(_card(rita, library.failed).locator('[data-testid="clip-error"]')).to_have_text(EXPORT_ERROR)
        expect(rita.get_by_role("button", name="Retry")).to_have_count(0)
    finally:
        context.close()

    failed.get_by_role("button", name="Retry").click()
    expect(page.locator("#clips-message")).to_contain_text(f"Clip {library.failed}: clip.export queued again")
    expect(failed.locator('[data-testid="clip-state"]')).to_have_text("review_approved")
    expect(page.locator('[data-testid="clip-error"]')).to_have_count(0)
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT ingest_state, last_error FROM clips WHERE id = :id"), {"id": library.failed}
        ).one()
    assert tuple(row) == ("review_approved", None)

    target = library.ids[5]
    _card(page, target).get_by_role("link", name="Find similar").click()
    expect(page).to_have_url(re.compile(rf"/query/?\?clip={target}(&|$)"))
    shows(page, target)
    wait_similar(page, library.expected(target)[:PAGE])


# ---- sign-in ------------------------------------------------------------------------------------------


def test_query_and_clips_need_sign_in(library: Library, page: Page, web_url: str) -> None:
    page.goto(f"{web_url}/clips")
    expect(page).to_have_url(re.compile(r"/login/?\?next=%2Fclips(%2F)?$"))
    expect(page.locator('[data-testid="clip-card"]')).to_have_count(0)
    target = library.ids[7]
    page.goto(f"{web_url}/query?clip={target}")
    expect(page).to_have_url(re.compile(rf"/login/?\?next=%2Fquery(%2F)?%3Fclip%3D{target}$"))
    expect(page.locator(PLAYER)).to_have_count(0)
    expect(page.locator(CARDS)).to_have_count(0)
    # Signing in there goes on to the shared search.
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill("rita-password")
    page.get_by_role("button", name="Sign in").click()
    shows(page, target)
    expect(page).to_have_url(re.compile(rf"/query/?\?clip={target}(&|$)"))
    expect_in_url(page, model=EFFNET)
