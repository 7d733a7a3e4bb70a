"""Similar-clip search on a real PostgreSQL + pgvector, against exact answers computed in numpy.

One database for the module (loading and indexing a few thousand vectors takes seconds): clips in
clustered 512-d space (clip-vit-b32, keyframe_multi_avg); every clip also has a second strategy's
vector of the same model close to its first one (as keyframe_single would be), and a thousand clips a
second model's (efficientnet-lite0, 1280-d). Video 1 holds 1 % of the clips, video 2 only 13.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session

from heaters import migrations
from heaters.devstack.postgres import Postgres
from heaters.search import vectors

CLIP, EFFNET = "clip-vit-b32", "efficientnet-lite0"
MAIN, OTHER = "keyframe_multi_avg", "keyframe_single"
N = 4000
BIG_VIDEO, TINY_VIDEO = 1, 2
BIG_CLIPS, TINY_CLIPS = N // 100, 13
QUERY = 1
EFFNET_CLIPS = range(1, 1001)


@dataclass(frozen=True)
class Corpus:
    engine: Engine
    migrated_indexes: dict[str, str]  # indexdef of each model's index as the migrations made it
    built_indexes: dict[str, str]  # and as index_ddl made it
    main: Any  # (N, 512) float32, row i is clip i + 1
    other: Any  # (N, 512): the OTHER strategy's vectors, each near the same clip's MAIN one
    effnet: Any  # (1000, 1280), row i is clip i + 1
    video: Any  # source video id per main row


def clustered(rng: Any, n: int, dim: int, *, clusters: int, latent: int = 16) -> Any:
    """Unit vectors around `clusters` centres on a low-dimensional spread, like real embeddings."""
    centres = rng.standard_normal((clusters, latent))
    basis = rng.standard_normal((latent, dim)) / np.sqrt(latent)
    z = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, latent))
    x = z @ basis + 0.02 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def literal(v: Any) -> str:
    return "[" + ",".join(f"{x:.7f}" for x in v) + "]"


def indexdefs(engine: Engine) -> dict[str, str]:
    names = {vectors.index_name(model): model for model in (CLIP, EFFNET)}
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'embeddings'"))
        return {names[name]: definition for name, definition in rows if name in names}


def load(engine: Engine, corpus_main: Any, other: Any, effnet: Any, video: Any) -> None:
    raw = engine.raw_connection()
    try:
        conn: Any = raw.driver_connection
        with conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO source_videos (id, title) SELECT g, 'v' || g FROM generate_series(1, %s) g",
                (int(video.max()),),
            )
            with cursor.copy(
                "COPY clips (id, source_video_id, clip_identifier, start_frame, end_frame) FROM STDIN"
            ) as copy:
                for i, v in enumerate(video):
                    copy.write_row((i + 1, int(v), f"c{i + 1}", (i + 1) * 10, (i + 1) * 10 + 10))
            columns = "clip_id, model_name, generation_strategy, embedding_dim, embedding"
            with cursor.copy(f"COPY embeddings ({columns}) FROM STDIN") as copy:
                for i, row in enumerate(corpus_main):
                    copy.write_row((i + 1, CLIP, MAIN, 512, literal(row)))
                for i, row in enumerate(other):
                    copy.write_row((i + 1, CLIP, OTHER, 512, literal(row)))
                for i, row in enumerate(effnet):
                    copy.write_row((i + 1, EFFNET, MAIN, 1280, literal(row)))
        conn.commit()
    finally:
        raw.close()
    with engine.connect() as connection:
        for model in (CLIP, EFFNET):
            connection.execute(text(vectors.index_ddl(model)))
        connection.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE source_videos, clips, embeddings"))


@pytest.fixture(scope="module")
def corpus(pg_server: Postgres) -> Iterator[Corpus]:
    url = pg_server.create_database(f"search_{secrets.token_hex(4)}").replace("postgresql://", "postgresql+psycopg://")
    migrations.upgrade(url)
    engine = create_engine(url)
    migrated = indexdefs(engine)
    with engine.begin() as connection:  # built below by index_ddl, after the rows are in
        for model in (CLIP, EFFNET):
            connection.execute(text(f"DROP INDEX IF EXISTS {vectors.index_name(model)}"))
    rng = np.random.default_rng(20261201)
    main = clustered(rng, N, 512, clusters=40)
    effnet = clustered(rng, len(EFFNET_CLIPS), 1280, clusters=10)
    # Video 1: 1 % of the rows, spread over every cluster (the hard case for a filter); video 2: 13 clips;
    # the rest in videos of 200 clips.
    order = rng.permutation(N)
    video = np.empty(N, dtype=np.int64)
    video[order[:BIG_CLIPS]] = BIG_VIDEO
    video[order[BIG_CLIPS : BIG_CLIPS + TINY_CLIPS]] = TINY_VIDEO
    rest = order[BIG_CLIPS + TINY_CLIPS :]
    video[rest] = 3 + np.arange(rest.size) // 200
    # Same model, other strategy: each clip's vector moved by ~0.3 (cosine ~0.95 to its MAIN vector), so
    # both strategies' rows interleave in the index and a mixed-up query would return wrong similarities.
    other = main + 0.3 * rng.standard_normal((N, 512)).astype(np.float32) / np.sqrt(512)
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    load(engine, main, other, effnet, video)
    yield Corpus(engine, migrated, indexdefs(engine), main, other, effnet, video)
    engine.dispose()


def exact(space: Any, query_row: int, k: int = vectors.PAGE_SIZE, rows: Any | None = None) -> list[int]:
    """Clip ids of the exact top k by cosine (float32), the query itself left out."""
    candidates = np.arange(space.shape[0]) if rows is None else np.asarray(rows)
    candidates = candidates[candidates != query_row]
    sims = space[candidates] @ space[query_row]
    return [int(c) + 1 for c in candidates[np.argsort(-sims, kind="stable")[:k]]]


def run(corpus: Corpus, **kwargs: Any) -> list[tuple[int, float]]:
    with Session(corpus.engine) as session:
        rows = vectors.search(session, **{"model": CLIP, "strategy": MAIN, **kwargs})
        session.rollback()
    return rows


def raw(corpus: Corpus, sql: str, params: dict[str, Any], settings: list[str]) -> list[Any]:
    with Session(corpus.engine) as session:
        for statement in settings:
            session.execute(text(statement))
        rows = list(session.execute(text(sql), params))
        session.rollback()
    return rows


def params(clip: int, **extra: Any) -> dict[str, Any]:
    return {"query_clip": clip, "strategy": MAIN, "limit": vectors.PAGE_SIZE, "offset": 0, **extra}


# ----------------------------------------------------------------------------------------- pure


def test_unknown_model_is_a_value_error() -> None:
    for call in (
        lambda: vectors.index_ddl("clip-vit-b32'; DROP TABLE clips; --"),
        lambda: vectors.index_name("resnet"),
        lambda: vectors.similar_sql("resnet", video_filter=False),
        lambda: vectors.exact_video_sql("openai/clip-vit-base-patch32"),
    ):
        with pytest.raises(ValueError, match="Unknown embedding model"):
            call()


def test_search_refuses_an_unknown_model_before_touching_the_database() -> None:
    with pytest.raises(ValueError, match="Unknown embedding model"):
        vectors.search(None, clip_id=1, model="resnet", strategy=MAIN)  # type: ignore[arg-type]


def test_index_ddl_is_a_partial_half_precision_hnsw_index_per_model() -> None:
    ddl = vectors.index_ddl(EFFNET, m=24, ef_construction=100)
    assert ddl == (
        "CREATE INDEX IF NOT EXISTS embeddings_hnsw_half_efficientnet_lite0 ON embeddings USING hnsw "
        "((embedding::halfvec(1280)) halfvec_cosine_ops) WITH (m = 24, ef_construction = 100) "
        "WHERE model_name = 'efficientnet-lite0'"
    )
    with pytest.raises(ValueError):
        vectors.index_ddl(CLIP, m=16, ef_construction=20)  # ef_construction below 2 m


def test_ef_search_covers_the_page_and_settings_are_local() -> None:
    assert vectors.ef_search_for(0, 12) == vectors.DEFAULT_EF_SEARCH
    assert vectors.ef_search_for(480, 12) == 492
    assert vectors.ef_search_for(5000, 12) == vectors.MAX_EF_SEARCH
    settings = vectors.session_settings(120, iterative_scan="strict_order", max_scan_tuples=5000)
    assert settings[:3] == [
        "SET LOCAL hnsw.ef_search = 120",
        "SET LOCAL hnsw.iterative_scan = strict_order",
        "SET LOCAL hnsw.max_scan_tuples = 5000",
    ]
    assert all(s.startswith("SET LOCAL ") for s in settings)
    with pytest.raises(ValueError):
        vectors.session_settings(0)


# --------------------------------------------------------------------------------- on PostgreSQL


def test_index_ddl_builds_the_index_the_migrations_declare(corpus: Corpus) -> None:
    """Same name, expression, opclass, m, ef_construction and predicate: one index per model, not two."""
    assert set(corpus.built_indexes) == {CLIP, EFFNET}
    assert corpus.built_indexes == corpus.migrated_indexes


def plan(corpus: Corpus, *, video_filter: bool) -> str:
    sql = vectors.similar_sql(CLIP, video_filter=video_filter)
    settings = vectors.session_settings(40, filtered=video_filter)
    rows = raw(corpus, f"EXPLAIN {sql}", params(QUERY, video_id=BIG_VIDEO), settings)
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize("video_filter", [False, True])
def test_explain_shows_the_hnsw_index(corpus: Corpus, video_filter: bool) -> None:
    shown = plan(corpus, video_filter=video_filter)
    assert f"Index Scan using {vectors.index_name(CLIP)} on embeddings e" in shown, shown
    assert "Order By: ((embedding)::halfvec(512) <=>" in shown, shown
    assert "Sort Key: (((e.embedding" not in shown, shown  # no sort of every row instead


def test_results_stay_in_the_query_model_and_strategy_and_leave_out_the_query(corpus: Corpus) -> None:
    rows = run(corpus, clip_id=QUERY)
    assert len(rows) == vectors.PAGE_SIZE
    ids = [clip for clip, _ in rows]
    assert QUERY not in ids
    assert len(set(ids)) == len(ids)  # one row per clip: the OTHER rows never join in
    for clip, similarity in rows:  # every similarity is between MAIN vectors, in half precision
        assert similarity == pytest.approx(float(corpus.main[clip - 1] @ corpus.main[QUERY - 1]), abs=2e-3)
    # The query clip's own OTHER vector (cosine ~0.95) would top the list if strategies were mixed.
    assert rows[0][1] < float(corpus.other[QUERY - 1] @ corpus.main[QUERY - 1])

    other = run(corpus, clip_id=QUERY, strategy=OTHER)
    assert len(other) == vectors.PAGE_SIZE
    for clip, similarity in other:
        assert similarity == pytest.approx(float(corpus.other[clip - 1] @ corpus.other[QUERY - 1]), abs=2e-3)

    effnet = run(corpus, clip_id=QUERY, model=EFFNET)
    assert len(effnet) == vectors.PAGE_SIZE and {clip for clip, _ in effnet} <= set(EFFNET_CLIPS)
    for clip, similarity in effnet:
        assert similarity == pytest.approx(float(corpus.effnet[clip - 1] @ corpus.effnet[QUERY - 1]), abs=2e-3)


def test_a_clip_without_that_embedding_finds_nothing(corpus: Corpus) -> None:
    assert run(corpus, clip_id=2000, model=EFFNET) == []  # clip 2000 has no efficientnet row
    assert run(corpus, clip_id=QUERY, strategy="keyframe_multi") == []


def test_recall_at_12_against_exact_search(corpus: Corpus) -> None:
    queries = np.random.default_rng(3).choice(N, size=150, replace=False)
    recalls = []
    for row in queries:
        found = {clip for clip, _ in run(corpus, clip_id=int(row) + 1)}
        recalls.append(len(found & set(exact(corpus.main, int(row)))) / vectors.PAGE_SIZE)
    assert float(np.mean(recalls)) >= 0.95, sorted(recalls)[:10]


def video_rows(corpus: Corpus, video: int) -> Any:
    return np.flatnonzero(corpus.video == video)


def test_the_filtered_index_walk_fills_a_page_thanks_to_the_iterative_scan(corpus: Corpus) -> None:
    members = video_rows(corpus, BIG_VIDEO)
    query = int(members[0]) + 1
    sql = vectors.similar_sql(CLIP, video_filter=True)
    walked = raw(corpus, sql, params(query, video_id=BIG_VIDEO), vectors.session_settings(40, filtered=True))
    assert len(walked) == vectors.PAGE_SIZE
    assert {r[0] for r in walked} <= {int(m) + 1 for m in members} - {query}
    # Without the iterative scan, 40 nearest rows hold far fewer than 12 of a 1 % video's clips.
    stopped = raw(
        corpus,
        sql,
        params(query, video_id=BIG_VIDEO),
        vectors.session_settings(40, iterative_scan="off", filtered=True),
    )
    assert len(stopped) < vectors.PAGE_SIZE


@pytest.mark.parametrize(
    ("video", "exact_video_max"), [(BIG_VIDEO, 0), (BIG_VIDEO, None), (TINY_VIDEO, 0), (TINY_VIDEO, None)]
)
def test_search_in_one_video_returns_a_full_page_of_its_clips(
    corpus: Corpus, video: int, exact_video_max: int | None
) -> None:
    members = video_rows(corpus, video)
    assert len(members) >= vectors.PAGE_SIZE + 1
    recalls = []
    for row in members[:10]:
        query = int(row) + 1
        rows = run(corpus, clip_id=query, video_id=video, exact_video_max=exact_video_max)
        ids = [clip for clip, _ in rows]
        assert len(ids) == vectors.PAGE_SIZE
        assert set(ids) <= {int(m) + 1 for m in members} - {query}
        recalls.append(len(set(ids) & set(exact(corpus.main, int(row), rows=members))) / vectors.PAGE_SIZE)
    assert float(np.mean(recalls)) >= 0.9


def test_pages_do_not_overlap_and_go_down_in_similarity(corpus: Corpus) -> None:
    for query in (QUERY, 1234, 3999):
        pages = [run(corpus, clip_id=query, page=page) for page in range(1, 8)]
        ids = [clip for page in pages for clip, _ in page]
        assert len(ids) == 7 * vectors.PAGE_SIZE
        assert len(set(ids)) == len(ids)
        for page in pages:
            assert [s for _, s in page] == sorted((s for _, s in page), reverse=True)
        firsts = [page[0][1] for page in pages]
        assert firsts == sorted(firsts, reverse=True)


def test_least_similar_first_pages_through_the_top_pool_backwards(corpus: Corpus) -> None:
    pool = vectors.DISSIMILAR_POOL // vectors.PAGE_SIZE
    similar = [r for page in range(1, pool + 1) for r in run(corpus, clip_id=1234, page=page)]
    dissimilar = [r for page in range(1, pool + 2) for r in run(corpus, clip_id=1234, page=page, sort="dissimilar")]
    assert len(dissimilar) == vectors.DISSIMILAR_POOL  # the page after the pool is empty
    assert [s for _, s in dissimilar] == sorted((s for _, s in dissimilar))
    assert len({clip for clip, _ in similar} & {clip for clip, _ in dissimilar}) >= 0.95 * vectors.DISSIMILAR_POOL
    assert dissimilar[0][1] < similar[0][1]


def test_search_refuses_autocommit_where_set_local_would_be_ignored(corpus: Corpus) -> None:
    connection = corpus.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        with Session(bind=connection) as session, pytest.raises(RuntimeError, match="transaction"):
            vectors.search(session, clip_id=QUERY, model=CLIP, strategy=MAIN)
    finally:
        connection.close()


def test_a_query_vector_finds_what_its_clip_finds(corpus: Corpus) -> None:
    sql = vectors.similar_sql(CLIP, video_filter=False, query="vector")
    by_vector = raw(
        corpus,
        sql,
        {"vector": literal(corpus.main[1233]), "strategy": MAIN, "limit": vectors.PAGE_SIZE + 1, "offset": 0},
        vectors.session_settings(vectors.DEFAULT_EF_SEARCH),
    )
    assert by_vector[0][0] == 1234 and by_vector[0][1] == pytest.approx(1.0, abs=1e-3)  # itself, not left out
    by_clip = [clip for clip, _ in run(corpus, clip_id=1234)]
    assert len({r[0] for r in by_vector[1:]} & set(by_clip)) >= vectors.PAGE_SIZE - 1  # text vs stored floats


def test_the_filtered_walk_leaves_sorting_on_for_the_rest_of_the_transaction(corpus: Corpus) -> None:
    query = int(video_rows(corpus, BIG_VIDEO)[0]) + 1
    with Session(corpus.engine) as session:
        rows = vectors.search(session, clip_id=query, model=CLIP, strategy=MAIN, video_id=BIG_VIDEO, exact_video_max=0)
        assert len(rows) == vectors.PAGE_SIZE
        assert session.execute(text("SHOW enable_sort")).scalar_one() == "on"
        assert session.execute(text("SHOW hnsw.ef_search")).scalar_one() == str(vectors.FILTERED_EF_SEARCH)
        session.rollback()
