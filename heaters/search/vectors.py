"""Nearest-neighbour search over `embeddings`: pure SQL builders, and `search()` which runs them.

One partial HNSW index per model (`index_ddl`), on the dimensionless column cast to ``halfvec(dim)``:
a table can hold several models of different dimensions, and half precision halves the index
(bench/similarity.py --compare-vector, 10k-100k rows: 130 vs 260 MiB at 100k x 512, recall@12
0.999 vs 1.000, same latency).

Two rules make PostgreSQL use that index, and the builders below keep both:

- the model name is an SQL literal, never a bound parameter: the planner uses a partial index only
  when it can prove ``model_name = '<model>'`` from the query itself (a generic plan cannot);
- the ORDER BY is the index's own expression, ``embedding::halfvec(dim) <=> <query>``, with the query
  vector cast to the same type, as a scalar subquery (an InitPlan) rather than a join.

A query never mixes vector spaces: it compares rows of the query's model (the literal) and of the
query's generation strategy (a bound parameter, checked on each row the index returns).
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import text
from sqlmodel import Session

from heaters.errors import HeatersError
from heaters.models.artifact import EMBEDDING_MODELS, hnsw_index_name

PAGE_SIZE = 12  # the product's page of similar clips

# HNSW parameters from bench/similarity.py (2-core AMD EPYC shared with other jobs, clustered data,
# recall@12 against exact float32 search in numpy). m = 16, ef_construction = 64 (pgvector's defaults)
# build 1M x 512 in 824 s and 1M x 1280 in 772 s (1.3 GB and 3.9 GB of halfvec index), inside the hour.
# ef_search at 1M: 40 -> recall 0.97 / 0.95 (512 / 1280 dims), 100 -> 0.999 / 0.988, 200 -> 0.999 / 0.998;
# below 200 some queries got 0/12 (the walk stuck in a neighbouring cluster), at 200 the worst was 11/12
# in the sweep. 200 costs ~1 ms more than 40 and kept p95 at 15 / 18 ms (1M x 512 / 1280, target 20).
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 64
DEFAULT_EF_SEARCH = 200
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
# The video-filtered walk (a video of more than EXACT_VIDEO_MAX_CLIPS clips): most of its rows come from
# the iterative scan, whose later batches are rougher; a wider walk keeps more true neighbours. 100k rows,
# 1 % video, relaxed_order: ef 200 -> recall 0.93, p50 19 ms; 1000 -> 0.96, 25 ms (strict_order: 0.84, 0.91).
FILTERED_EF_SEARCH = MAX_EF_SEARCH

# Iterative scans (pgvector >= 0.8) keep walking the graph when filters (strategy, video) reject rows.
# relaxed_order may return a later row slightly closer than an earlier one; it found more of the true
# neighbours than strict_order (which drops such rows) on filtered queries, and similar_sql re-sorts
# each page. A page is still a slice of one fixed sequence of rows, so pages never overlap.
IterativeScan = Literal["off", "strict_order", "relaxed_order"]
DEFAULT_ITERATIVE_SCAN: IterativeScan = "relaxed_order"
# How many index tuples one query may visit before it gives up (pgvector's default is 20 000). A video
# holding 1 % of the rows needs about 100 tuples per result; 100 000 covers a 0.1 % video's first pages.
DEFAULT_MAX_SCAN_TUPLES = 100_000

# "Least similar first" re-sorts the most similar DISSIMILAR_POOL clips (10 pages) the other way round:
# "least similar of the whole table" is not a question the index can answer, nor a useful one.
Sort = Literal["similar", "dissimilar"]
DISSIMILAR_POOL = 10 * PAGE_SIZE

# A video with at most this many clips is searched exactly (its clips by index, every distance, a
# sort): exact, and about as fast as walking the graph past every other video's rows. Measured for a
# video of 1 % of the rows: 1 000 clips (100k rows) exact p50 20-30 ms vs walk 17-25 ms; 10 000 clips
# (1M rows) exact ~600 ms vs walk 76-94 ms. Vectors are TOASTed, so each exact row costs a TOAST read.
EXACT_VIDEO_MAX_CLIPS = 1000


class UnknownModel(HeatersError, ValueError):
    """The model name is not one we index (heaters.models.artifact.EMBEDDING_MODELS)."""


def dimension(model: str) -> int:
    """The model's vector dimension; the check that lets its name go into SQL as a literal."""
    try:
        return EMBEDDING_MODELS[model]
    except (KeyError, TypeError):
        known = ", ".join(sorted(EMBEDDING_MODELS))
        raise UnknownModel(f"Unknown embedding model {model!r}; known models: {known}.") from None


def _literal(model: str) -> str:
    dimension(model)
    if "'" in model or "\\" in model:  # EMBEDDING_MODELS is ours, but a literal must never break out
        raise UnknownModel(f"Embedding model name {model!r} cannot be an SQL literal.")
    return f"'{model}'"


def index_name(model: str) -> str:
    """The models' name for it (migration 0003 creates the same index): IF NOT EXISTS then finds it."""
    dimension(model)
    return hnsw_index_name(model)


def index_expression(model: str) -> str:
    """The indexed expression; queries must ORDER BY exactly this for the index to serve them."""
    return f"(embedding::halfvec({dimension(model)}))"


def index_ddl(model: str, *, m: int = DEFAULT_M, ef_construction: int = DEFAULT_EF_CONSTRUCTION) -> str:
    """CREATE INDEX for one model's rows: HNSW, cosine, on the half-precision cast of the column."""
    if not (2 <= m <= 100 and 4 <= ef_construction <= 1000 and ef_construction >= 2 * m):
        raise ValueError(f"HNSW needs 2 <= m <= 100 and 2 * m <= ef_construction <= 1000, not {m}, {ef_construction}")
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name(model)} ON embeddings "
        f"USING hnsw ({index_expression(model)} halfvec_cosine_ops) "
        f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)}) "
        f"WHERE model_name = {_literal(model)}"
    )


def ef_search_for(offset: int, limit: int, *, base: int = DEFAULT_EF_SEARCH) -> int:
    """ef_search for a page: at least offset + limit, so the first graph walk already holds the page.

    Every page within the first ``base`` rows (16 pages of 12) gets the same walk, so those pages are
    slices of one sequence and never overlap. A deeper page gets a wider walk (better recall there);
    its neighbour page, walked with another width, may then share a clip with it (1 clip in 250 pages
    measured at 100k with base 40). Capped at pgvector's maximum; the iterative scan goes deeper still.
    """
    return max(base, min(offset + limit, MAX_EF_SEARCH))


def session_settings(
    ef_search: int,
    *,
    iterative_scan: IterativeScan = DEFAULT_ITERATIVE_SCAN,
    max_scan_tuples: int = DEFAULT_MAX_SCAN_TUPLES,
    filtered: bool = False,
) -> list[str]:
    """SET LOCAL statements for one search, to run inside the caller's transaction.

    ``filtered`` (the video filter) also turns sorts off: the planner guesses 0.5 % for the filter and,
    on a table of a few thousand rows, would rather sort every row than walk the graph; search() has
    already chosen the walk for a large video (a small one goes to exact_video_sql), so the planner
    must not. search() turns sorts back on after the query (SORTS_BACK_ON).
    """
    if not 1 <= ef_search <= MAX_EF_SEARCH:
        raise ValueError(f"hnsw.ef_search must be between 1 and {MAX_EF_SEARCH}, not {ef_search}")
    if iterative_scan not in ("off", "strict_order", "relaxed_order"):
        raise ValueError(f"unknown hnsw.iterative_scan mode {iterative_scan!r}")
    if max_scan_tuples < 1:
        raise ValueError(f"hnsw.max_scan_tuples must be positive, not {max_scan_tuples}")
    return [
        f"SET LOCAL hnsw.ef_search = {int(ef_search)}",
        f"SET LOCAL hnsw.iterative_scan = {iterative_scan}",
        f"SET LOCAL hnsw.max_scan_tuples = {int(max_scan_tuples)}",
        *(["SET LOCAL enable_sort = off"] if filtered else []),
    ]


SORTS_BACK_ON = "SET LOCAL enable_sort TO DEFAULT"


def similar_sql(
    model: str,
    *,
    video_filter: bool,
    sort: Sort = "similar",
    query: Literal["clip", "vector"] = "clip",
) -> str:
    """Nearest neighbours of one vector among one model's and one strategy's rows: (clip_id, similarity).

    Bound parameters: ``:strategy``, ``:limit``, ``:offset``; ``:query_clip`` (whose own embedding of this
    model and strategy is the query, and which is left out of the results) or ``:vector`` (a text like
    ``'[0.1, ...]'``); ``:video_id`` when ``video_filter`` (only clips of that source video).
    Similarity is 1 - cosine distance, computed in half precision like the index.

    ``sort="similar"`` is the index order (each page re-sorted: relaxed_order). ``sort="dissimilar"``
    takes the DISSIMILAR_POOL most similar and pages through them from the least similar; ``:pool`` is
    then bound too.
    """
    if sort not in ("similar", "dissimilar"):
        raise ValueError(f"unknown sort {sort!r}; use 'similar' or 'dissimilar'")
    dim = dimension(model)
    name = _literal(model)
    if query == "clip":
        target = (
            f"(SELECT q.embedding::halfvec({dim}) FROM embeddings q WHERE q.clip_id = :query_clip "
            f"AND q.model_name = {name} AND q.generation_strategy = :strategy)"
        )
        # Without its embedding the walk would still run, with a NULL distance: stop it before the scan.
        exclude = f" AND e.clip_id <> :query_clip AND {target} IS NOT NULL"
    elif query == "vector":
        target, exclude = f"CAST(:vector AS halfvec({dim}))", ""
    else:
        raise ValueError(f"unknown query kind {query!r}; use 'clip' or 'vector'")
    # A scalar subquery per row, not a join: the planner keeps the index walk (filtered, iterative)
    # instead of turning to a join and a sort; search() picks exact_video_sql for small videos itself.
    video = " AND (SELECT c.source_video_id FROM clips c WHERE c.id = e.clip_id) = :video_id" if video_filter else ""
    nearest = (
        f"SELECT e.clip_id, e.embedding::halfvec({dim}) <=> {target} AS distance FROM embeddings e "
        f"WHERE e.model_name = {name} AND e.generation_strategy = :strategy{exclude}{video} "
        "ORDER BY distance"
    )
    if sort == "similar":
        return (
            f"SELECT clip_id, 1 - distance AS similarity FROM ({nearest} LIMIT :limit OFFSET :offset) AS n "
            "ORDER BY distance, clip_id"
        )
    return (
        f"SELECT clip_id, 1 - distance AS similarity FROM ({nearest} LIMIT :pool) AS n "
        "ORDER BY distance DESC, clip_id LIMIT :limit OFFSET :offset"
    )


def exact_video_sql(model: str, *, sort: Sort = "similar") -> str:
    """The video-filtered query without the index: every clip of the video, compared in full precision.

    search() uses it for a video of at most EXACT_VIDEO_MAX_CLIPS clips, and when the index walk could
    not fill a page (past the end, or max_scan_tuples ran out); its cost is bounded by the video's size.
    """
    dim = dimension(model)
    name = _literal(model)
    target = (
        f"(SELECT q.embedding FROM embeddings q WHERE q.clip_id = :query_clip "
        f"AND q.model_name = {name} AND q.generation_strategy = :strategy)"
    )
    nearest = (
        f"SELECT e.clip_id, (e.embedding <=> {target})::float8 AS distance FROM clips c "
        f"JOIN embeddings e ON e.clip_id = c.id AND e.model_name = {name} AND e.generation_strategy = :strategy "
        f"AND e.embedding_dim = {dim} "
        "WHERE c.source_video_id = :video_id AND e.clip_id <> :query_clip ORDER BY distance, e.clip_id"
    )
    if sort == "similar":
        return f"SELECT clip_id, 1 - distance AS similarity FROM ({nearest} LIMIT :limit OFFSET :offset) AS n"
    return (
        f"SELECT clip_id, 1 - distance AS similarity FROM ({nearest} LIMIT :pool) AS n "
        "ORDER BY distance DESC, clip_id LIMIT :limit OFFSET :offset"
    )


def video_clip_count_sql() -> str:
    """How many clips a video has, counted up to ``:cap`` + 1 (enough to choose a plan, bounded in cost)."""
    return "SELECT count(*) FROM (SELECT 1 FROM clips WHERE source_video_id = :video_id LIMIT :cap + 1) AS v"


def _in_transaction(session: Session) -> bool:
    """False when the DBAPI connection autocommits: SET LOCAL would then be ignored without an error."""
    driver = session.connection().connection.driver_connection
    return not getattr(driver, "autocommit", False)


def search(
    session: Session,
    *,
    clip_id: int,
    model: str,
    strategy: str,
    video_id: int | None = None,
    page: int = 1,
    sort: Sort = "similar",
    page_size: int = PAGE_SIZE,
    exact_video_max: int | None = None,
    ef_search: int | None = None,
) -> list[tuple[int, float]]:
    """One page of the clips most similar to ``clip_id`` (its own embedding of ``model`` and ``strategy``).

    Runs SET LOCAL in the caller's transaction (the settings last until it ends) and never commits.
    Returns (clip_id, similarity) pairs; an empty list when the clip has no such embedding or the page
    is past the end. ``video_id`` keeps only that source video's clips: a video of at most
    ``exact_video_max`` clips (default EXACT_VIDEO_MAX_CLIPS) is compared exactly, a larger one through
    the index, and exactly after all if the index walk could not fill the page. ``ef_search`` overrides
    DEFAULT_EF_SEARCH (FILTERED_EF_SEARCH with a video) as the walk's least width.
    """
    if page < 1 or page_size < 1:
        raise ValueError(f"page and page_size start at 1, not {page} and {page_size}")
    dimension(model)
    if not _in_transaction(session):
        raise RuntimeError("search() needs a transaction: in autocommit mode SET LOCAL has no effect")
    offset = (page - 1) * page_size
    depth = DISSIMILAR_POOL if sort == "dissimilar" else offset + page_size
    wanted = page_size if sort == "similar" else min(page_size, max(0, DISSIMILAR_POOL - offset))
    params: dict[str, object] = {
        "query_clip": clip_id,
        "strategy": strategy,
        "limit": page_size,
        "offset": offset,
        "pool": DISSIMILAR_POOL,
        "video_id": video_id,
    }
    exact_max = EXACT_VIDEO_MAX_CLIPS if exact_video_max is None else exact_video_max
    if video_id is not None:
        clips = session.execute(text(video_clip_count_sql()), {"video_id": video_id, "cap": exact_max}).scalar_one()
        if clips <= exact_max:
            return _rows(session, exact_video_sql(model, sort=sort), params)
    filtered = video_id is not None
    base = ef_search or (FILTERED_EF_SEARCH if filtered else DEFAULT_EF_SEARCH)
    settings = session_settings(ef_search_for(0, depth, base=base), filtered=filtered)
    session.execute(text("; ".join(settings)))  # one round trip
    rows = _rows(session, similar_sql(model, video_filter=filtered, sort=sort), params)
    if filtered:
        session.execute(text(SORTS_BACK_ON))  # the caller's later queries may sort again
    if video_id is not None and len(rows) < wanted:
        rows = _rows(session, exact_video_sql(model, sort=sort), params)
    return rows


def _rows(session: Session, sql: str, params: dict[str, object]) -> list[tuple[int, float]]:
    return [(int(r[0]), float(r[1])) for r in session.execute(text(sql), params) if r[1] is not None]
