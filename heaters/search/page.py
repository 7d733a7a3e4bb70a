"""What /query shows: the filters that exist, a main clip, and a page of its most similar clips.

Every search runs inside one (model, generation strategy): the page offers no "all models" choice, so it
can never compare vectors of two spaces. A query whose clip lacks that variant says so instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import text
from sqlmodel import Session

from heaters.adapters import get_media_urls
from heaters.clips.variants import generation_strategy
from heaters.models.artifact import EMBEDDING_MODELS
from heaters.search import vectors
from heaters.settings import Settings

QUERY_ROUTE = "/query"


@dataclass(frozen=True)
class Query:
    """Everything a search is, and all of it in the URL: a search can be shared by its link."""

    model: str
    strategy: str
    clip: int = 0  # 0: pick one at random
    video: int = 0  # 0: every source video
    page: int = 1
    sort: vectors.Sort = "similar"

    def url(self, **changes: Any) -> str:
        query = replace(self, **changes)
        params = {"clip": query.clip, "model": query.model, "strategy": query.strategy, "page": query.page}
        if query.video:
            params["video"] = query.video
        if query.sort != "similar":
            params["sort"] = query.sort
        return f"{QUERY_ROUTE}?{urlencode(params)}"


@dataclass
class Result:
    query: Query
    models: list[str] = field(default_factory=list)
    strategies: list[str] = field(default_factory=list)
    videos: list[dict[str, Any]] = field(default_factory=list)
    main: dict[str, Any] | None = None
    similar: list[dict[str, Any]] = field(default_factory=list)
    has_next: bool = False
    note: str = ""


def _int(value: str | None, default: int = 0) -> int:
    try:
        return max(0, int(value or default))
    except ValueError:
        return default


def parse(params: dict[str, str], settings: Settings) -> Query:
    """The URL's search, with the configured default variant where it names none (or an unknown one)."""
    model = params.get("model") or settings.embedding_model
    if model not in EMBEDDING_MODELS:
        model = settings.embedding_model
    sort: vectors.Sort = "dissimilar" if params.get("sort") == "dissimilar" else "similar"
    return Query(
        model=model,
        strategy=params.get("strategy") or generation_strategy(settings).value,
        clip=_int(params.get("clip")),
        video=_int(params.get("video")),
        page=max(1, _int(params.get("page"), 1)),
        sort=sort,
    )


def _options(session: Session, query: Query) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    models = [
        m
        for m in session.execute(text("SELECT DISTINCT model_name FROM embeddings ORDER BY 1")).scalars()
        if m in EMBEDDING_MODELS
    ]
    strategies = list(
        session.execute(
            text("SELECT DISTINCT generation_strategy FROM embeddings WHERE model_name = :m ORDER BY 1"),
            {"m": query.model},
        ).scalars()
    )
    videos = [
        {"id": r.id, "title": r.title or f"Video {r.id}"}
        for r in session.execute(
            text(
                "SELECT v.id, v.title FROM source_videos v WHERE EXISTS (SELECT 1 FROM clips c JOIN embeddings e "
                "ON e.clip_id = c.id WHERE c.source_video_id = v.id AND e.model_name = :m) ORDER BY v.title, v.id"
            ),
            {"m": query.model},
        ).all()
    ]
    return models, strategies, videos


def _random_clip(session: Session, query: Query) -> int:
    row = session.execute(
        text(
            "SELECT e.clip_id FROM embeddings e JOIN clips c ON c.id = e.clip_id WHERE e.model_name = :m "
            "AND e.generation_strategy = :s AND (CAST(:v AS integer) IS NULL OR c.source_video_id = :v) "
            "AND c.clip_filepath IS NOT NULL ORDER BY random() LIMIT 1"
        ),
        {"m": query.model, "s": query.strategy, "v": query.video or None},
    ).first()
    return int(row[0]) if row else 0


def _has_variant(session: Session, query: Query) -> bool:
    row = session.execute(
        text("SELECT 1 FROM embeddings WHERE clip_id = :c AND model_name = :m AND generation_strategy = :s"),
        {"c": query.clip, "m": query.model, "s": query.strategy},
    ).first()
    return row is not None


def _cards(session: Session, ids: list[int], ttl: int) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = session.execute(
        text(
            "SELECT c.id, c.source_video_id, v.title, c.start_frame, c.end_frame, c.clip_filepath, "
            "c.grouped_with_clip_id, c.ingest_state, v.fps_num, v.fps_den, "
            "(SELECT a.s3_key FROM clip_artifacts a WHERE a.clip_id = c.id AND a.artifact_type = 'keyframe' "
            " ORDER BY abs(a.position - 1), a.id LIMIT 1) AS keyframe "
            "FROM clips c JOIN source_videos v ON v.id = c.source_video_id WHERE c.id = ANY(:ids)"
        ),
        {"ids": ids},
    ).all()
    urls = get_media_urls()
    cards = {}
    for r in rows:
        frames = r.end_frame - r.start_frame
        fps = r.fps_num / r.fps_den if r.fps_num and r.fps_den else 0
        cards[int(r.id)] = {
            "id": int(r.id),
            "video_id": int(r.source_video_id),
            "video_title": r.title or f"Video {r.source_video_id}",
            "frames": f"{r.start_frame:,} to {r.end_frame - 1:,}",
            "duration": f"{frames / fps:.1f} s" if fps else f"{frames} frames",
            "group": int(r.grouped_with_clip_id or 0),
            "state": r.ingest_state,
            "src": urls.get_url(r.clip_filepath, expires_in=ttl) if r.clip_filepath else "",
            "poster": urls.get_url(r.keyframe, expires_in=ttl) if r.keyframe else "",
        }
    return cards


def run(session: Session, query: Query, settings: Settings) -> Result:
    """The whole page in one transaction; media URLs are signed for the session's length."""
    result = Result(query)
    result.models, result.strategies, result.videos = _options(session, query)
    if result.strategies and query.strategy not in result.strategies:  # another model: its own strategies
        default = generation_strategy(settings).value
        query = replace(query, strategy=default if default in result.strategies else result.strategies[0])
        result.query = query
    if not query.clip:
        query = replace(query, clip=_random_clip(session, query), page=1)
        result.query = query
    if not query.clip:
        result.note = "No clips found for those filters."
        return result
    ttl = settings.presign_ttl_seconds
    main = _cards(session, [query.clip], ttl).get(query.clip)
    if main is None:
        result.note = f"Clip {query.clip} does not exist."
        return result
    result.main = main
    if not _has_variant(session, query):
        result.note = f"Clip {query.clip} has no {query.model} / {query.strategy} embedding yet."
        return result

    def page(number: int) -> list[tuple[int, float]]:
        return vectors.search(
            session,
            clip_id=query.clip,
            model=query.model,
            strategy=query.strategy,
            video_id=query.video or None,
            page=number,
            sort=query.sort,
        )

    rows = page(query.page)
    result.has_next = len(rows) == vectors.PAGE_SIZE and bool(page(query.page + 1))
    cards = _cards(session, [clip for clip, _ in rows], ttl)
    result.similar = [
        {**cards[clip], "similarity": round(similarity * 100)} for clip, similarity in rows if clip in cards
    ]
    if not result.similar:
        result.note = "No clips found for those filters."
    return result
