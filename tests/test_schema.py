"""The schema itself: migrations up and down, and constraints that reject bad rows."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError

from heaters import migrations
from heaters.models import metadata


@pytest.fixture
def empty_db_url(pg_server) -> str:  # type: ignore[no-untyped-def]
    import uuid

    url = pg_server.create_database(f"mig_{uuid.uuid4().hex[:8]}")
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        names = set(connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    engine.dispose()
    return names


def test_upgrade_downgrade_upgrade_on_an_empty_database(empty_db_url: str) -> None:
    expected = {
        "source_videos",
        "clips",
        "cuts",
        "clip_artifacts",
        "embeddings",
        "users",
        "review_actions",
        "job_claims",
    }
    migrations.upgrade(empty_db_url)
    assert expected <= _tables(empty_db_url)
    migrations.downgrade(empty_db_url, "base")
    assert _tables(empty_db_url) == {"alembic_version"}
    migrations.upgrade(empty_db_url)
    assert expected <= _tables(empty_db_url)


def test_models_and_migrations_agree(migrated: str) -> None:
    """No drift: the migrations build exactly what the SQLModel tables describe."""
    engine = create_engine(migrated)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert diff == []


def _video(connection, title: str = "v") -> int:  # type: ignore[no-untyped-def]
    return int(
        connection.execute(
            text("INSERT INTO source_videos (title) VALUES (:t) RETURNING id"), {"t": title}
        ).scalar_one()
    )


def _clip(connection, video_id: int, start: int, end: int, state: str | None = None, ident: str | None = None) -> int:  # type: ignore[no-untyped-def]
    columns = "source_video_id, clip_identifier, start_frame, end_frame" + (", ingest_state" if state else "")
    values = ":v, :i, :s, :e" + (", :st" if state else "")
    return int(
        connection.execute(
            text(f"INSERT INTO clips ({columns}) VALUES ({values}) RETURNING id"),
            {
                "v": video_id,
                "i": ident or f"{video_id}_{start}_{end}_{state}",
                "s": start,
                "e": end,
                "st": state,
            },
        ).scalar_one()
    )


def test_defaults_satisfy_their_checks(engine: Engine) -> None:
    with engine.begin() as connection:
        video = _video(connection)
        clip = _clip(connection, video, 0, 10)
        assert (
            connection.execute(text("SELECT ingest_state FROM source_videos WHERE id=:i"), {"i": video}).scalar()
            == "new"
        )
        assert (
            connection.execute(text("SELECT ingest_state FROM clips WHERE id=:i"), {"i": clip}).scalar()
            == "pending_review"
        )


def test_live_clips_of_one_video_cannot_overlap(engine: Engine) -> None:
    with engine.begin() as connection:
        video = _video(connection)
        _clip(connection, video, 0, 100)
        _clip(connection, video, 100, 200)  # touching is fine: segments are half-open
    with pytest.raises(IntegrityError, match="clips_no_overlap"), engine.begin() as connection:
        _clip(connection, video, 50, 150, ident="overlapping")
    with engine.connect() as connection:  # the failed insert left the existing rows alone
        assert connection.execute(text("SELECT count(*) FROM clips")).scalar() == 2


def test_archived_clips_do_not_count_as_overlapping(engine: Engine) -> None:
    with engine.begin() as connection:
        video, other = _video(connection, "a"), _video(connection, "b")
        _clip(connection, video, 0, 100, state="archived")
        _clip(connection, video, 0, 50)
        _clip(connection, video, 50, 100, state="review_archived")
        _clip(connection, other, 0, 100)  # another video's frames never collide
        assert connection.execute(text("SELECT count(*) FROM clips")).scalar() == 4
    with pytest.raises(IntegrityError, match="clips_no_overlap"), engine.begin() as connection:
        connection.execute(text("UPDATE clips SET ingest_state = 'pending_review' WHERE ingest_state = 'archived'"))


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE source_videos SET ingest_state = 'done'", "source_videos_ingest_state_check"),
        ("UPDATE clips SET ingest_state = 'new'", "clips_ingest_state_check"),
        ("UPDATE clips SET end_frame = start_frame", "clips_frames_check"),
        (
            "INSERT INTO cuts (source_video_id, frame_number, source) SELECT id, 0, 'reviewer' FROM source_videos",
            "cuts_frame_number_check",
        ),
        ("UPDATE source_videos SET fps_num = 30", "source_videos_fps_pair_check"),
        ("INSERT INTO users (username, password_hash, role) VALUES ('x', 'h', 'owner')", "users_role_check"),
        (
            "INSERT INTO job_claims (stage, entity_id, state) VALUES ('encode', 1, 'lost')",
            "job_claims_state_check",
        ),
    ],
)
def test_unknown_states_and_bad_values_are_rejected(engine: Engine, statement: str, constraint: str) -> None:
    with engine.begin() as connection:
        _clip(connection, _video(connection), 0, 10)
    with pytest.raises(IntegrityError, match=constraint), engine.begin() as connection:
        connection.execute(text(statement))
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT v.ingest_state, c.ingest_state, c.end_frame FROM clips c "
                "JOIN source_videos v ON v.id = c.source_video_id"
            )
        ).one()
    assert tuple(row) == ("new", "pending_review", 10)


def test_embeddings_keep_their_dimension_and_use_the_hnsw_index(engine: Engine) -> None:
    with engine.begin() as connection:
        clip = _clip(connection, _video(connection), 0, 10)
        vector = "[" + ",".join(["0.1"] * 512) + "]"
        connection.execute(
            text(
                "INSERT INTO embeddings (clip_id, model_name, generation_strategy, embedding_dim, embedding) "
                "VALUES (:c, 'clip-vit-b32', 'keyframe_multi_avg', 512, :e)"
            ),
            {"c": clip, "e": vector},
        )
    with pytest.raises(IntegrityError, match="embeddings_dim_check"), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO embeddings (clip_id, model_name, generation_strategy, embedding_dim, embedding) "
                "VALUES (:c, 'm', 'keyframe_single', 512, '[1,2,3]')"
            ),
            {"c": clip},
        )
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            connection.execute(
                text(
                    "EXPLAIN SELECT id FROM embeddings WHERE model_name = 'clip-vit-b32' "
                    "ORDER BY embedding::halfvec(512) <=> CAST(:q AS halfvec(512)) LIMIT 5"
                ),
                {"q": vector},
            ).scalars()
        )
    assert "embeddings_hnsw_half_clip_vit_b32" in plan
