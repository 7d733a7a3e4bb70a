"""`heaters clips list|show|retry` against the real database: what a curator sees, clear refusals."""

from __future__ import annotations

import json
import os

from sqlalchemy import Engine, text

from tests.fixtures.workers import run_cli


def _env(app_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **app_env}


def _clips(engine: Engine) -> tuple[int, int, int, int]:
    """Two grouped exported clips with keyframes and an embedding, one failed export, one still pending."""
    with engine.begin() as db:
        video = db.execute(
            text(
                "INSERT INTO source_videos (title, ingest_state, fps_num, fps_den, frame_count) "
                "VALUES ('Surf day', 'encoded', 25, 1, 1000) RETURNING id"
            )
        ).scalar_one()

        def clip(start: int, end: int, state: str, key: str | None = None, error: str | None = None) -> int:
            return int(
                db.execute(
                    text(
                        "INSERT INTO clips (source_video_id, clip_identifier, start_frame, end_frame, ingest_state, "
                        "clip_filepath, last_error) VALUES (:v, :ident, :s, :e, :state, :key, :error) RETURNING id"
                    ),
                    {
                        "v": video,
                        "ident": f"{video}_segment_{start}",
                        "s": start,
                        "e": end,
                        "state": state,
                        "key": key,
                        "error": error,
                    },
                ).scalar_one()
            )

        first = clip(0, 100, "embedded", "clips/Surf_day_a.mp4")
        second = clip(100, 250, "keyframed", "clips/Surf_day_b.mp4")
        failed = clip(250, 400, "export_failed", error="The exported clip has 10 frames instead of 150.")
        pending = clip(400, 500, "pending_review")
        db.execute(text("UPDATE clips SET grouped_with_clip_id = :b WHERE id = :a"), {"a": first, "b": second})
        db.execute(text("UPDATE clips SET grouped_with_clip_id = :a WHERE id = :b"), {"a": first, "b": second})
        for position, frame in enumerate((25, 50, 75)):
            db.execute(
                text(
                    "INSERT INTO clip_artifacts (clip_id, artifact_type, strategy, position, s3_key, metadata) "
                    "VALUES (:c, 'keyframe', 'multi', :p, :k, CAST(:m AS jsonb))"
                ),
                {
                    "c": first,
                    "p": position,
                    "k": f"artifacts/keyframes/clip_{first}_multi_{position}_a1.jpg",
                    "m": json.dumps({"frame": frame}),
                },
            )
        db.execute(
            text(
                "INSERT INTO embeddings (clip_id, model_name, generation_strategy, embedding_dim, embedding) "
                "VALUES (:c, 'efficientnet-lite0', 'keyframe_multi_avg', 1280, :e)"
            ),
            {"c": first, "e": "[" + ",".join(["1"] + ["0"] * 1279) + "]"},
        )
    return first, second, failed, pending


def test_list_and_show_say_what_the_pipeline_made_of_each_clip(engine: Engine, app_env: dict[str, str]) -> None:
    first, second, failed, _pending = _clips(engine)
    listed = run_cli(_env(app_env), "clips", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {first, second, failed}  # past review only: the pending clip is not listed
    assert (rows[first]["grouped_with"], rows[second]["grouped_with"]) == (second, first)
    assert rows[failed]["failed"] and "10 frames instead of 150" in rows[failed]["last_error"]
    assert rows[first]["keyframe_key"].endswith("_multi_1_a1.jpg")  # the middle keyframe is the card's picture

    only_failed = json.loads(run_cli(_env(app_env), "clips", "list", "--state", "export_failed", "--json").stdout)
    assert [row["id"] for row in only_failed] == [failed]

    shown = run_cli(_env(app_env), "clips", "show", str(first), "--json")
    assert shown.returncode == 0, shown.stderr
    clip = json.loads(shown.stdout)
    assert clip["grouped_with"] == second and clip["key"] == "clips/Surf_day_a.mp4"
    assert [(k["position"], k["frame"]) for k in clip["keyframes"]] == [(0, 25), (1, 50), (2, 75)]
    assert clip["embeddings"] == [
        {"model": "efficientnet-lite0", "strategy": "keyframe_multi_avg", "dim": 1280, "version": None}
    ]
    human = run_cli(_env(app_env), "clips", "show", str(first))
    assert f"group: with clip {second}" in human.stdout


def test_bad_requests_get_a_clear_refusal_and_change_nothing(engine: Engine, app_env: dict[str, str]) -> None:
    first, *_ = _clips(engine)
    with engine.connect() as db:
        before = db.execute(text("SELECT id, ingest_state, last_error FROM clips ORDER BY id")).all()

    bad_state = run_cli(_env(app_env), "clips", "list", "--state", "pending_review")
    assert bad_state.returncode == 1 and "not a state after review" in bad_state.stderr
    missing = run_cli(_env(app_env), "clips", "show", "999999")
    assert missing.returncode == 1 and "clip 999999 does not exist" in missing.stderr
    not_failed = run_cli(_env(app_env), "clips", "retry", str(first))
    assert not_failed.returncode == 1 and f"clip {first} cannot move to retry: it is embedded" in not_failed.stderr
    assert "Traceback" not in bad_state.stderr + missing.stderr + not_failed.stderr

    with engine.connect() as db:
        assert db.execute(text("SELECT id, ingest_state, last_error FROM clips ORDER BY id")).all() == before
