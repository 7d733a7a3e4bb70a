"""Ingest: a URL or a file becomes a video row (or gives back the one that already exists)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from heaters.errors import PermanentError
from heaters.models import SourceVideo, VideoState
from heaters.pipeline.dispatch import schedule
from heaters.pipeline.stages import Stage
from heaters.storage import keys
from heaters.storage.s3 import S3Storage
from heaters.videos import service
from heaters.videos.download import validate_url

MAX_TITLE = 250


@dataclass(frozen=True)
class Ingested:
    video_id: int
    created: bool


def file_sha256(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def default_title(source: str) -> str:
    """A URL's host, or a file's name without extension, until a better title is known."""
    if source.startswith(("http://", "https://")):
        return (urlsplit(source).hostname or source)[:MAX_TITLE]
    return (Path(source).stem or "untitled")[:MAX_TITLE]


def ingest_url(session: Session, url: str, *, title: str | None = None) -> Ingested:
    url = validate_url(url.strip())
    existing = session.exec(select(SourceVideo).where(SourceVideo.original_url == url)).first()
    if existing is not None and existing.id is not None:
        return Ingested(existing.id, created=False)
    video = SourceVideo(title=(title or default_title(url))[:MAX_TITLE], original_url=url)
    if not _insert(session, video):
        again = session.exec(select(SourceVideo).where(SourceVideo.original_url == url)).one()
        return Ingested(again.id or 0, created=False)
    assert video.id is not None
    schedule(session, Stage.DOWNLOAD, video.id)
    return Ingested(video.id, created=True)


def ingest_file(
    session: Session,
    storage: S3Storage,
    path: Path,
    *,
    title: str | None = None,
    original_name: str | None = None,
) -> Ingested:
    """Upload the file to `originals/` (verified) and queue its encode; the same bytes twice are one video."""
    if not path.is_file():
        raise PermanentError(f"No such file: {path}")
    name = original_name or path.name
    digest = file_sha256(path)
    existing = session.exec(select(SourceVideo).where(SourceVideo.content_sha256 == digest)).first()
    if existing is not None and existing.id is not None:
        return Ingested(existing.id, created=False)
    video = SourceVideo(
        title=(title or default_title(name))[:MAX_TITLE],
        content_sha256=digest,
        ingest_state=VideoState.DOWNLOADING.value,
    )
    if not _insert(session, video):
        again = session.exec(select(SourceVideo).where(SourceVideo.content_sha256 == digest)).one()
        return Ingested(again.id or 0, created=False)
    assert video.id is not None
    key = keys.original_key(video.title, video.id, name, datetime.now(UTC))
    size = storage.upload_file(path, key)
    service.transition(
        session,
        video.id,
        VideoState.DOWNLOADED,
        filepath=key,
        original_size_bytes=size,
        downloaded_at=datetime.now(UTC),
    )
    schedule(session, Stage.ENCODE, video.id)
    return Ingested(video.id, created=True)


def _insert(session: Session, video: SourceVideo) -> bool:
    """Insert in a savepoint: losing a race on the unique URL/hash index is not an error."""
    try:
        with session.begin_nested():
            session.add(video)
            session.flush()
    except IntegrityError:
        return False
    return True
