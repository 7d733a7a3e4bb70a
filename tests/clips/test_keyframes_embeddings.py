"""Keyframes and embeddings after export, on the real services: exact frames, retries, upserts, backfill, failure.

Clips live on real all-intra proxies in the test bucket: a grey ramp (frame n has grey level 16 + 8 * (n mod
27), so every frame differs from its neighbours far above JPEG noise) and a two-scene video (a testsrc2
scene and a mandelbrot scene: two visual families). Stages run either in a real `heaters worker` or in this
process through `run_stage`, exactly as the actors call it.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine, text

from heaters.adapters import get_storage
from heaters.clips import service as clip_service
from heaters.clips import stages as clip_stages
from heaters.clips.variants import keyframe_frames
from heaters.db import get_engine, unit_of_work
from heaters.media.tools import run_tool
from heaters.models import SourceVideo
from heaters.models.states import KeyframeStrategy
from heaters.pipeline import claims
from heaters.pipeline.dispatch import sweep
from heaters.pipeline.runner import run_stage
from heaters.pipeline.stages import Stage
from heaters.videos.encode import encode_proxy
from heaters.videos.stages import write_cuts_and_clips
from tests.embeddings.fake_clip import write_fake_clip
from tests.fixtures.workers import claim_row, wait_for
from tests.media import synth
from tests.playback.helpers import clear_caches, decode_frames, queued

FPS = Fraction(25)
LEVELS = 27  # ramp frame n is grey level 16 + 8 * (n mod LEVELS)
RAMP_FRAMES = 200
RAMP_CUTS = (37, 120)  # clip 2 is [37, 120): clip-local and absolute frame numbers differ
FAMILY_SCENES = (90, 90)  # testsrc2 then mandelbrot (tests/media/synth.py SCENE_SOURCES)
FAMILY_CUTS = (30, 60, 90, 120, 150)  # three clips in each scene
EFFNET, CLIP = "efficientnet-lite0", "clip-vit-b32"
MULTI_AVG, SINGLE = "keyframe_multi_avg", "keyframe_single"
KEYFRAME_PREFIX = "artifacts/keyframes/"


@dataclass(frozen=True)
class Proxy:
    path: Path
    frame_count: int
    width: int
    height: int
    frames: tuple[np.ndarray, ...]  # every decoded frame, (height, width, 3) uint8


def _proxy(source: Path, folder: Path) -> Proxy:
    made = encode_proxy(source, folder, crf=18, timeout=120)
    info = made.info
    raw = decode_frames(made.path, width=info.width, height=info.height)
    frames = tuple(np.frombuffer(f, np.uint8).reshape(info.height, info.width, 3) for f in raw)
    assert info.fps == FPS and info.frame_count == len(frames)
    return Proxy(made.path, info.frame_count, info.width, info.height, frames)


@pytest.fixture(scope="module")
def ramp_proxy(tmp_path_factory: pytest.TempPathFactory) -> Proxy:
    folder = tmp_path_factory.mktemp("ramp")
    source = folder / "ramp.mp4"
    run_tool(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"color=c=black:s=96x64:r=25:d={RAMP_FRAMES / 25}",
            "-vf", f"format=gray,geq=lum='16+8*mod(N,{LEVELS})',format=yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "50", str(source),
        ],
        timeout=120,
    )  # fmt: skip
    proxy = _proxy(source, folder)
    assert proxy.frame_count == RAMP_FRAMES
    return proxy


@pytest.fixture(scope="module")
def family_proxy(tmp_path_factory: pytest.TempPathFactory) -> Proxy:
    folder = tmp_path_factory.mktemp("families")
    source = synth.make_cut_video(folder / "families.mp4", fps=FPS, scene_frames=FAMILY_SCENES, audio=False)
    return _proxy(source.path, folder)


@pytest.fixture(scope="module")
def fake_clip_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip_model") / "clip_image_tower.onnx"
    write_fake_clip(path)
    return path


# ---- settings in this process -----------------------------------------------------------------------------


@pytest.fixture
def use_env(pipeline_env: dict[str, str], work_root: Path) -> Iterator[Callable[..., None]]:
    """Set (or, with None, unset) settings for stages run in this process; everything is put back afterwards."""
    saved: dict[str, str | None] = {}

    def use(**values: str | None) -> None:
        for name, value in values.items():
            saved.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        clear_caches()

    use(WORK_DIR=str(work_root), EMBEDDING_MODEL=None, CLIP_MODEL_PATH=None, KEYFRAME_STRATEGY=None)
    yield use
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    clear_caches()


# ---- rows -------------------------------------------------------------------------------------------------


def add_video(proxy: Proxy, title: str, cuts: tuple[int, ...], key: str) -> list[int]:
    """An encoded video on the proxy, cut at `cuts`, its clips approved by a reviewer; returns the clip ids."""
    get_storage().upload_file(proxy.path, key, content_type="video/mp4")
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
        ids = write_cuts_and_clips(session, video.id, [(c, 30.0) for c in cuts], proxy.frame_count)
        session.execute(
            text("UPDATE clips SET ingest_state = 'review_approved', reviewed_at = now() WHERE id = ANY(:ids)"),
            {"ids": ids},
        )
    return ids


def clip(engine: Engine, clip_id: int) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT * FROM clips WHERE id = :i"), {"i": clip_id}).mappings().one())


def keyframe_rows(engine: Engine, clip_id: int) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT * FROM clip_artifacts WHERE clip_id = :i ORDER BY strategy, position"), {"i": clip_id}
        ).mappings()
        return [dict(r) for r in rows]


def embedding_rows(engine: Engine, clip_id: int) -> list[dict[str, Any]]:
    """Every embedding of the clip, with its vector parsed into `vector`."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT *, embedding::text AS literal FROM embeddings WHERE clip_id = :i "
                "ORDER BY model_name, generation_strategy"
            ),
            {"i": clip_id},
        ).mappings()
        found = [dict(r) for r in rows]
    for row in found:
        row["vector"] = np.array([float(x) for x in row.pop("literal").strip("[]").split(",")], dtype=np.float64)
    return found


def set_state(engine: Engine, clip_id: int, state: str) -> None:
    """Put a clip back where a stage starts, as a re-run after a change of mind would."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE clips SET ingest_state = :s WHERE id = :i"), {"s": state, "i": clip_id})


def requeue(stage: Stage, clip_id: int) -> None:
    """As the Dispatcher does before it sends a message (the message itself is not needed in this process)."""
    with unit_of_work() as session:
        assert claims.mark_queued(session, stage, clip_id), f"{stage.key} {clip_id} could not be queued"


def run_in_process(clip_id: int, *, through: str = "embedded") -> None:
    """export -> keyframes -> embed for one approved clip, in this process, each as its actor runs it."""
    steps = [
        (Stage.EXPORT, clip_stages.run_export, "exported"),
        (Stage.KEYFRAMES, clip_stages.run_keyframes, "keyframed"),
        (Stage.EMBED, clip_stages.run_embed, "embedded"),
    ]
    for stage, work, reached in steps:
        run_stage(stage, clip_id, work)
        state = clip(get_engine(), clip_id)
        assert state["ingest_state"] == reached, (stage.key, state["ingest_state"], state["last_error"])
        if reached == through:
            return


# ---- images -----------------------------------------------------------------------------------------------


def jpeg(key: str) -> np.ndarray:
    """The object at `key`, which must be a JPEG, decoded to (height, width, 3)."""
    data = get_storage().client.get_object(Bucket=get_storage().bucket, Key=key)["Body"].read()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG", key
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def difference(image: np.ndarray, frame: np.ndarray) -> float:
    assert image.shape == frame.shape, (image.shape, frame.shape)
    return float(np.abs(image - frame.astype(np.float64)).mean())


def assert_is_frame(image: np.ndarray, proxy: Proxy, frame: int) -> None:
    """The image is the proxy's frame `frame` (within JPEG noise), and clearly not either neighbour."""
    here = difference(image, proxy.frames[frame])
    assert here < 2.5, f"keyframe differs from proxy frame {frame} by {here:.1f} grey levels on average"
    for neighbour in (frame - 1, frame + 1):
        if 0 <= neighbour < proxy.frame_count:
            there = difference(image, proxy.frames[neighbour])
            assert there > 5, f"proxy frames {frame} and {neighbour} are too alike ({there:.1f}) to tell apart"


def object_keys() -> set[str]:
    return set(get_storage().list_keys(KEYFRAME_PREFIX))


# ---- 1. keyframes at the exact frames -------------------------------------------------------------------


def test_multi_keyframes_are_the_proxy_frames_at_25_50_75_percent(
    engine: Engine, use_env: Callable[..., None], ramp_proxy: Proxy
) -> None:
    ids = add_video(ramp_proxy, "Ramp", RAMP_CUTS, key="proxies/ramp_kf_proxy.mp4")
    clip_id = ids[1]  # frames [37, 120): 83 frames
    run_in_process(clip_id, through="keyframed")
    start, end = 37, 120
    locals_ = keyframe_frames(start, end, KeyframeStrategy.MULTI)
    assert locals_ == [int(83 * 0.25), int(83 * 0.5), int(83 * 0.75)] == [20, 41, 62]

    rows = keyframe_rows(engine, clip_id)
    assert [(r["artifact_type"], r["strategy"], r["position"]) for r in rows] == [
        ("keyframe", "multi", 0),
        ("keyframe", "multi", 1),
        ("keyframe", "multi", 2),
    ]
    for row, local in zip(rows, locals_, strict=True):
        assert KEY.fullmatch(row["s3_key"]) and _key_of(row["s3_key"]) == (clip_id, row["position"], 1)
        assert row["s3_key"].startswith(KEYFRAME_PREFIX) and row["s3_key"].endswith(".jpg")
        assert row["metadata"]["frame"] == start + local and row["metadata"]["local_frame"] == local
        assert row["metadata"]["timestamp"] == pytest.approx(local / 25, abs=1e-6)
        assert_is_frame(jpeg(row["s3_key"]), ramp_proxy, start + local)
    assert object_keys() == {r["s3_key"] for r in rows}
    assert clip(engine, clip_id)["last_error"] is None
    assert claim_row(engine, Stage.EMBED.key, clip_id)["state"] == "queued"  # the next stage is on its way


def test_midpoint_gives_one_keyframe_and_a_single_keyframe_embedding(
    engine: Engine, use_env: Callable[..., None], ramp_proxy: Proxy
) -> None:
    use_env(KEYFRAME_STRATEGY="midpoint")
    ids = add_video(ramp_proxy, "Ramp", RAMP_CUTS, key="proxies/ramp_mid_proxy.mp4")
    clip_id = ids[2]  # frames [120, 200): the midpoint is local 40, frame 160
    run_in_process(clip_id)
    rows = keyframe_rows(engine, clip_id)
    assert [(r["strategy"], r["position"], r["metadata"]["frame"]) for r in rows] == [("midpoint", 0, 160)]
    assert_is_frame(jpeg(rows[0]["s3_key"]), ramp_proxy, 160)
    (embedding,) = embedding_rows(engine, clip_id)
    assert (embedding["model_name"], embedding["generation_strategy"]) == (EFFNET, SINGLE)


KEY = re.compile(r"artifacts/keyframes/clip_(\d+)_multi_(\d+)_a(\d+)-[0-9a-f]{6}\.jpg")


def _key_of(key: str) -> tuple[int, int, int]:
    """(clip, position, attempt) of a keyframe key; the random part is what keeps runs apart."""
    match = KEY.fullmatch(key)
    assert match, key
    return int(match[1]), int(match[2]), int(match[3])


# ---- 2. retries and re-runs never collide ------------------------------------------------------------------


class SimulatedCrash(BaseException):
    """Not an Exception: the runner records no failure, as when the process is killed mid-job."""


def test_a_retry_after_a_crash_mid_upload_and_a_rerun_replace_keyframes_cleanly(
    engine: Engine, use_env: Callable[..., None], ramp_proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add_video(ramp_proxy, "Ramp", RAMP_CUTS, key="proxies/ramp_retry_proxy.mp4")
    clip_id = ids[1]
    run_in_process(clip_id, through="exported")

    # Attempt 1 uploads its first keyframe, then dies while decoding the second: no row was written.
    real_run_tool, calls = clip_stages.run_tool, []

    def dies_on_second_decode(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:
            raise SimulatedCrash
        return real_run_tool(*args, **kwargs)

    monkeypatch.setattr(clip_stages, "run_tool", dies_on_second_decode)
    with pytest.raises(SimulatedCrash):
        run_stage(Stage.KEYFRAMES, clip_id, clip_stages.run_keyframes)
    monkeypatch.setattr(clip_stages, "run_tool", real_run_tool)
    (half_written,) = object_keys()
    assert _key_of(half_written) == (clip_id, 0, 1)
    assert keyframe_rows(engine, clip_id) == []
    assert clip(engine, clip_id)["ingest_state"] == "keyframing"
    with engine.begin() as connection:  # time passes: the dead worker's lease runs out
        connection.execute(
            text("UPDATE job_claims SET lease_until = now() - interval '1 second' WHERE stage = :s AND entity_id = :e"),
            {"s": Stage.KEYFRAMES.key, "e": clip_id},
        )

    # Attempt 2 takes the expired claim over and finishes.
    run_stage(Stage.KEYFRAMES, clip_id, clip_stages.run_keyframes)
    after_retry = clip(engine, clip_id)
    assert after_retry["ingest_state"] == "keyframed" and after_retry["last_error"] is None
    claim = claim_row(engine, Stage.KEYFRAMES.key, clip_id)
    assert claim is not None and (claim["state"], claim["attempts"], claim["last_error"]) == ("succeeded", 2, None)
    rows = keyframe_rows(engine, clip_id)
    second = [r["s3_key"] for r in rows]
    assert [_key_of(k) for k in second] == [(clip_id, p, 2) for p in range(3)]
    assert set(second) <= object_keys()
    for row in rows:
        assert_is_frame(jpeg(row["s3_key"]), ramp_proxy, row["metadata"]["frame"])

    # A later successful run (keyframes again from `exported`) replaces those rows and deletes their objects.
    set_state(engine, clip_id, "exported")
    requeue(Stage.KEYFRAMES, clip_id)
    run_stage(Stage.KEYFRAMES, clip_id, clip_stages.run_keyframes)
    assert clip(engine, clip_id)["ingest_state"] == "keyframed"
    rows = keyframe_rows(engine, clip_id)
    third = [r["s3_key"] for r in rows]
    # Work wanted again starts a fresh count (attempt 1 again); the run's random part keeps its keys apart.
    assert [_key_of(k) for k in third] == [(clip_id, p, 1) for p in range(3)]
    assert half_written not in third
    remaining = object_keys()
    assert set(third) <= remaining and not set(second) & remaining, sorted(remaining)
    assert [get_storage().head(k) for k in second] == [None, None, None]
    assert half_written not in remaining  # the crashed attempt's orphan went with the rerun

    # The embedding is made from the final attempt's images.
    run_stage(Stage.EMBED, clip_id, clip_stages.run_embed)
    assert clip(engine, clip_id)["ingest_state"] == "embedded"


# ---- 3. embeddings ----------------------------------------------------------------------------------------


def _keyframe_images(engine: Engine, clip_id: int) -> list[Image.Image]:
    return [Image.fromarray(jpeg(r["s3_key"]).astype(np.uint8)) for r in keyframe_rows(engine, clip_id)]


def test_approved_clips_reach_embedded_in_a_real_worker_and_rank_by_family(
    engine: Engine, use_env: Callable[..., None], family_proxy: Proxy, start_worker: Any
) -> None:
    """approved -> exported -> keyframed -> embedded with nobody's help; similar clips are nearest neighbours."""
    ids = add_video(family_proxy, "Families", FAMILY_CUTS, key="proxies/families_proxy.mp4")
    family = {clip_id: index // 3 for index, clip_id in enumerate(ids)}
    with unit_of_work() as session:
        sent = sweep(session)
    assert sent[Stage.EXPORT.key] == len(ids) and sent[Stage.KEYFRAMES.key] == sent[Stage.EMBED.key] == 0
    worker = start_worker(queues="exports,background_jobs")

    def all_embedded() -> bool:
        states = [clip(engine, i)["ingest_state"] for i in ids]
        failed = [s for s in states if s.endswith("failed")]
        assert not failed, [(i, clip(engine, i)["last_error"]) for i in ids]
        return set(states) == {"embedded"}

    wait_for(all_embedded, timeout=90, what="every clip to be embedded", logs=[worker.log])

    for clip_id in ids:
        row = clip(engine, clip_id)
        assert row["embedded_at"] is not None and row["clip_filepath"] and row["last_error"] is None
        assert [r["position"] for r in keyframe_rows(engine, clip_id)] == [0, 1, 2]
        (embedding,) = embedding_rows(engine, clip_id)
        assert (embedding["model_name"], embedding["generation_strategy"]) == (EFFNET, MULTI_AVG)
        assert embedding["embedding_dim"] == 1280 == embedding["vector"].shape[0]
        assert np.linalg.norm(embedding["vector"]) == pytest.approx(1.0, abs=1e-5)
        for stage in (Stage.EXPORT, Stage.KEYFRAMES, Stage.EMBED):
            claim = claim_row(engine, stage.key, clip_id)
            assert claim is not None and (claim["state"], claim["attempts"]) == ("succeeded", 1), claim

    # The stored vector is the renormalised mean of the clip's keyframes' embeddings.
    from heaters.embeddings import get_embedder

    vectors = get_embedder(EFFNET).embed(_keyframe_images(engine, ids[0]))
    mean = vectors.mean(axis=0)
    assert float(np.dot(mean / np.linalg.norm(mean), embedding_rows(engine, ids[0])[0]["vector"])) > 0.9999

    # Cosine distance in SQL on the stored vectors: a clip's own family ranks above every other clip.
    with engine.connect() as connection:
        for clip_id in ids:
            ranked = connection.execute(
                text(
                    "SELECT e.clip_id FROM embeddings e, embeddings q WHERE q.clip_id = :c AND e.clip_id <> :c "
                    "AND e.model_name = :m AND q.model_name = :m AND e.generation_strategy = :s "
                    "AND q.generation_strategy = :s ORDER BY e.embedding <=> q.embedding, e.clip_id"
                ),
                {"c": clip_id, "m": EFFNET, "s": MULTI_AVG},
            ).scalars()
            order = [family[i] for i in ranked]
            assert order == sorted(order, key=lambda f: f != family[clip_id]), (clip_id, order)
    from heaters.search.vectors import search

    with unit_of_work() as session:
        for clip_id in ids:
            found = search(session, clip_id=clip_id, model=EFFNET, strategy=MULTI_AVG)
            assert len(found) == len(ids) - 1
            assert {family[i] for i, _ in found[:2]} == {family[clip_id]}, (clip_id, found)


def test_embedding_a_clip_twice_upserts_the_same_vector(
    engine: Engine, use_env: Callable[..., None], family_proxy: Proxy
) -> None:
    ids = add_video(family_proxy, "Families", FAMILY_CUTS, key="proxies/families_twice_proxy.mp4")
    clip_id = ids[4]
    run_in_process(clip_id)
    (first,) = embedding_rows(engine, clip_id)
    set_state(engine, clip_id, "keyframed")
    requeue(Stage.EMBED, clip_id)
    run_stage(Stage.EMBED, clip_id, clip_stages.run_embed)
    assert clip(engine, clip_id)["ingest_state"] == "embedded"
    second = claim_row(engine, Stage.EMBED.key, clip_id)
    assert second["state"] == "succeeded" and second["attempts"] == 1  # ran again, on a fresh count
    (second,) = embedding_rows(engine, clip_id)
    assert second["id"] == first["id"] and second["updated_at"] > first["updated_at"]
    np.testing.assert_allclose(second["vector"], first["vector"], atol=1e-6)
    assert (second["model_name"], second["generation_strategy"], second["embedding_dim"]) == (EFFNET, MULTI_AVG, 1280)


def test_the_clip_backend_stores_512_d_vectors_from_clip_model_path(
    engine: Engine, use_env: Callable[..., None], family_proxy: Proxy, fake_clip_model: Path
) -> None:
    use_env(EMBEDDING_MODEL=CLIP, CLIP_MODEL_PATH=str(fake_clip_model))
    ids = add_video(family_proxy, "Families", FAMILY_CUTS, key="proxies/families_clip_proxy.mp4")
    run_in_process(ids[0])
    (embedding,) = embedding_rows(engine, ids[0])
    assert (embedding["model_name"], embedding["generation_strategy"]) == (CLIP, MULTI_AVG)
    assert embedding["embedding_dim"] == 512 == embedding["vector"].shape[0]
    assert np.linalg.norm(embedding["vector"]) == pytest.approx(1.0, abs=1e-5)
    from heaters.embeddings import get_embedder

    embedder = get_embedder(CLIP, clip_model_path=fake_clip_model)
    assert embedding["model_version"] == embedder.version
    mean = embedder.embed(_keyframe_images(engine, ids[0])).mean(axis=0)
    assert float(np.dot(mean / np.linalg.norm(mean), embedding["vector"])) > 0.9999


# ---- 4. backfill of the default variant ---------------------------------------------------------------------


def test_backfill_adds_the_default_variant_without_touching_the_clip(
    engine: Engine, use_env: Callable[..., None], family_proxy: Proxy, fake_clip_model: Path, broker: Any
) -> None:
    use_env(EMBEDDING_MODEL=CLIP, CLIP_MODEL_PATH=str(fake_clip_model))
    ids = add_video(family_proxy, "Families", FAMILY_CUTS, key="proxies/families_backfill_proxy.mp4")
    embedded = [ids[0], ids[1], ids[4]]
    for clip_id in embedded:
        run_in_process(clip_id)
    with engine.begin() as connection:
        connection.execute(text("UPDATE clips SET grouped_with_clip_id = :g WHERE id = :i"), {"g": ids[0], "i": ids[1]})
    columns = ("ingest_state", "reviewed_at", "embedded_at", "grouped_with_clip_id", "last_error")
    before = {i: {c: clip(engine, i)[c] for c in columns} for i in embedded}
    with unit_of_work() as session:  # still configured for CLIP: nothing to backfill
        assert sweep(session)[Stage.BACKFILL.key] == 0

    use_env(EMBEDDING_MODEL=None, CLIP_MODEL_PATH=None)  # back to the default, efficientnet-lite0
    with unit_of_work() as session:
        sent = sweep(session)
    assert sent[Stage.BACKFILL.key] == len(embedded), sent
    assert sent[Stage.EMBED.key] == sent[Stage.KEYFRAMES.key] == sent[Stage.EXPORT.key] == 0
    messages = [m for m in queued(broker.client, queue="background_jobs") if m.actor_name == Stage.BACKFILL.key]
    assert sorted(m.args[0] for m in messages) == embedded

    for clip_id in embedded:  # as the worker's actor runs each message
        run_stage(Stage.BACKFILL, clip_id, clip_stages.run_backfill)
        claim = claim_row(engine, Stage.BACKFILL.key, clip_id)
        assert claim is not None and claim["state"] == "succeeded", claim
    for clip_id in embedded:
        rows = embedding_rows(engine, clip_id)
        assert [(r["model_name"], r["generation_strategy"], r["embedding_dim"]) for r in rows] == [
            (CLIP, MULTI_AVG, 512),
            (EFFNET, MULTI_AVG, 1280),
        ]
        assert {c: clip(engine, clip_id)[c] for c in columns} == before[clip_id]
    with unit_of_work() as session:
        assert sweep(session)[Stage.BACKFILL.key] == 0

    # Queries restricted to one (model, strategy) see one vector space, whatever else a clip has.
    from heaters.search.vectors import search

    with unit_of_work() as session:
        for model in (CLIP, EFFNET):
            dims = session.execute(
                text(
                    "SELECT DISTINCT vector_dims(embedding) FROM embeddings "
                    "WHERE model_name = :m AND generation_strategy = :s"
                ),
                {"m": model, "s": MULTI_AVG},
            ).scalars()
            assert list(dims) == [512 if model == CLIP else 1280]
            distances = session.execute(
                text(
                    "SELECT e.clip_id, e.embedding <=> q.embedding FROM embeddings e JOIN embeddings q "
                    "ON q.clip_id = :c AND q.model_name = e.model_name AND q.generation_strategy = "
                    "e.generation_strategy WHERE e.model_name = :m AND e.generation_strategy = :s ORDER BY 2"
                ),
                {"c": ids[0], "m": model, "s": MULTI_AVG},
            ).all()
            assert distances[0][0] == ids[0] and len(distances) == len(embedded)
            found = search(session, clip_id=ids[0], model=model, strategy=MULTI_AVG)
            assert sorted(i for i, _ in found) == sorted(embedded[1:]), (model, found)
            assert search(session, clip_id=ids[0], model=model, strategy=SINGLE) == []


# ---- 5. a failing embedding fails visibly, boundedly, and can be retried ----------------------------------


def test_a_broken_embedding_model_fails_after_bounded_attempts_and_retry_puts_it_back(
    engine: Engine,
    use_env: Callable[..., None],
    family_proxy: Proxy,
    fake_clip_model: Path,
    start_worker: Any,
    broker: Any,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no such model.onnx"
    ids = add_video(family_proxy, "Families", FAMILY_CUTS[:1], key="proxies/families_failing_proxy.mp4")
    clip_id = ids[0]
    with unit_of_work() as session:
        assert sweep(session)[Stage.EXPORT.key] == 2
    worker = start_worker(
        queues="exports,background_jobs",
        EMBEDDING_MODEL=CLIP,
        CLIP_MODEL_PATH=str(missing),
        JOB_MAX_ATTEMPTS="2",
        JOB_BACKOFF_SECONDS="0.5",
    )
    wait_for(
        lambda: {clip(engine, i)["ingest_state"] for i in ids} == {"embedding_failed"},
        timeout=60,
        what="both clips to fail embedding",
        logs=[worker.log],
    )
    client = broker.client

    def nothing_pending() -> bool:  # no message waiting, delayed or unacknowledged on the clip queues
        names = ("exports", "exports.DQ", "background_jobs", "background_jobs.DQ")
        return all(client.hlen(f"dramatiq:{name}.msgs") == 0 for name in names)

    wait_for(nothing_pending, timeout=30, what="the queues to drain", logs=[worker.log])
    for i in ids:
        claim = claim_row(engine, Stage.EMBED.key, i)
        assert claim is not None and (claim["state"], claim["attempts"]) == ("failed", 2), claim
        row = clip(engine, i)
        assert row["embedded_at"] is None
        for message in (claim["last_error"], row["last_error"]):
            assert message and str(missing) in message and "CLIP_MODEL_PATH" in message, message
            assert "Traceback" not in message and "\n" not in message
        assert [r["position"] for r in keyframe_rows(engine, i)] == [0, 1, 2]  # keyframing was fine
        assert embedding_rows(engine, i) == []

    with unit_of_work() as session:
        sent = sweep(session)
    assert not any(v for k, v in sent.items() if k.startswith("clip.")), sent
    assert nothing_pending()
    assert [claim_row(engine, Stage.EMBED.key, i)["attempts"] for i in ids] == [2, 2]
    worker.stop()

    # Someone fixes the model path and presses retry: the clip goes back to `keyframed` with a fresh budget.
    with unit_of_work() as session:
        assert clip_service.retry(session, clip_id) is Stage.EMBED
    row = clip(engine, clip_id)
    assert (row["ingest_state"], row["last_error"]) == ("keyframed", None)
    with unit_of_work() as session:
        assert sweep(session)[Stage.EMBED.key] == 1  # only the retried clip; the other stays failed
    assert clip(engine, ids[1])["ingest_state"] == "embedding_failed"
    use_env(EMBEDDING_MODEL=CLIP, CLIP_MODEL_PATH=str(fake_clip_model))
    run_stage(Stage.EMBED, clip_id, clip_stages.run_embed)
    row = clip(engine, clip_id)
    assert (row["ingest_state"], row["last_error"]) == ("embedded", None)
    claim = claim_row(engine, Stage.EMBED.key, clip_id)
    assert claim is not None and (claim["state"], claim["attempts"]) == ("succeeded", 1)
    assert [(r["model_name"], r["embedding_dim"]) for r in embedding_rows(engine, clip_id)] == [(CLIP, 512)]
