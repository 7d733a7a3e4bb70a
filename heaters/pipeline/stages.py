"""Every pipeline stage, declared once: what it works on, its actor and queue, when it has work, how it fails.

The Dispatcher, the runner and the failure helpers read these declarations, so a new stage (for videos or
for clips) plugs in without copies. Every state name comes from the enums in `heaters.models.states`.
"""

from __future__ import annotations

from enum import Enum, StrEnum

from heaters.models.states import ClipState, VideoState
from heaters.queues import Queue


class Entity(StrEnum):
    """What a stage works on; `job_claims.entity_id` is an id in this entity's table."""

    VIDEO = "video"
    CLIP = "clip"
    CHUNK = "chunk"  # a part of a video's proxy (`proxy_chunks`)

    @property
    def table(self) -> str:
        return {Entity.VIDEO: "source_videos", Entity.CLIP: "clips", Entity.CHUNK: "proxy_chunks"}[self]

    def topics(self, entity_id: int) -> list[str]:
        """Where the live pages hear of this entity's stage runs."""
        plural = {Entity.VIDEO: "videos", Entity.CLIP: "clips", Entity.CHUNK: "chunks"}[self]
        return ["stages", plural, f"{self.value}:{entity_id}"]


def in_states(*states: StrEnum) -> str:
    """`ingest_state IN (...)` from enum members, so a renamed state cannot leave a stale predicate."""
    return "ingest_state IN (" + ", ".join(f"'{s.value}'" for s in states) + ")"


class Stage(Enum):
    DOWNLOAD = ("video.download", Queue.MEDIA_PROCESSING, Entity.VIDEO)
    ENCODE = ("video.encode", Queue.MEDIA_PROCESSING, Entity.VIDEO)
    # A chunked proxy: each chunk encoded and scored by any worker, then the chunks joined into the proxy.
    ENCODE_CHUNK = ("video.encode_chunk", Queue.MEDIA_PROCESSING, Entity.CHUNK)
    JOIN_PROXY = ("video.join_proxy", Queue.MEDIA_PROCESSING, Entity.VIDEO)
    DETECT_SCENES = ("video.detect_scenes", Queue.MEDIA_PROCESSING, Entity.VIDEO)
    MASTER = ("video.encode_master", Queue.ARCHIVAL, Entity.VIDEO)
    EXPORT = ("clip.export", Queue.EXPORTS, Entity.CLIP)
    KEYFRAMES = ("clip.keyframes", Queue.BACKGROUND_JOBS, Entity.CLIP)
    EMBED = ("clip.embed", Queue.BACKGROUND_JOBS, Entity.CLIP)
    # Another embedding variant (the configured default) for a clip already embedded with a different one:
    # its own claim, so it never touches the clip's lifecycle state.
    BACKFILL = ("clip.backfill_embedding", Queue.BACKGROUND_JOBS, Entity.CLIP)

    def __init__(self, actor_name: str, queue: Queue, entity: Entity) -> None:
        self.actor_name = actor_name
        self.queue = queue
        self.entity = entity

    def topics(self, entity_id: int) -> list[str]:
        return self.entity.topics(entity_id)

    @property
    def key(self) -> str:
        """The name stored in `job_claims.stage`."""
        return self.actor_name

    @property
    def needs_work(self) -> str:
        """SQL over the entity's table: the rows this stage still has to do (the Dispatcher's sweep).

        Bound parameters `:embedding_model`, `:generation_strategy` and `:export_grace` come from the settings.
        """
        return NEEDS_WORK[self]

    @property
    def failed_state(self) -> StrEnum | None:
        """Where the entity lands when the stage fails for good; None: an optional stage, error noted only."""
        return FAILED_STATE.get(self)

    @property
    def running_state(self) -> StrEnum | None:
        """The state the entity is in while this stage runs (its progress is shown there)."""
        return RUNNING_STATE.get(self)


V, C = VideoState, ClipState

NEEDS_WORK: dict[Stage, str] = {
    Stage.DOWNLOAD: f"{in_states(V.NEW, V.DOWNLOADING)} AND original_url IS NOT NULL AND filepath IS NULL",
    Stage.ENCODE: f"{in_states(V.DOWNLOADED, V.ENCODING)} AND filepath IS NOT NULL AND proxy_filepath IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM proxy_chunks k WHERE k.source_video_id = source_videos.id)",
    Stage.ENCODE_CHUNK: "encoded_at IS NULL AND EXISTS (SELECT 1 FROM source_videos v "
    f"WHERE v.id = proxy_chunks.source_video_id AND v.{in_states(V.ENCODING)})",
    Stage.JOIN_PROXY: f"{in_states(V.ENCODING)} AND proxy_filepath IS NULL "
    "AND EXISTS (SELECT 1 FROM proxy_chunks k WHERE k.source_video_id = source_videos.id) "
    "AND NOT EXISTS (SELECT 1 FROM proxy_chunks k WHERE k.source_video_id = source_videos.id "
    "AND k.encoded_at IS NULL)",
    Stage.DETECT_SCENES: f"{in_states(V.ENCODED, V.DETECTING_SCENES)} AND needs_splicing "
    "AND proxy_filepath IS NOT NULL",
    Stage.MASTER: "master_filepath IS NULL AND proxy_filepath IS NOT NULL AND filepath IS NOT NULL "
    "AND NOT needs_splicing",
    Stage.EXPORT: f"{in_states(C.REVIEW_APPROVED, C.EXPORTING)} AND clip_filepath IS NULL AND (reviewed_at IS NULL "
    "OR reviewed_at <= now() - make_interval(secs => :export_grace)) AND EXISTS (SELECT 1 FROM source_videos v "
    "WHERE v.id = clips.source_video_id AND v.proxy_filepath IS NOT NULL)",
    Stage.KEYFRAMES: f"{in_states(C.EXPORTED, C.KEYFRAMING)} AND clip_filepath IS NOT NULL",
    Stage.EMBED: in_states(C.KEYFRAMED, C.EMBEDDING),
    Stage.BACKFILL: f"{in_states(C.EMBEDDED)} AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.clip_id = clips.id "
    "AND e.model_name = :embedding_model AND e.generation_strategy = :generation_strategy)",
}

FAILED_STATE: dict[Stage, StrEnum] = {
    Stage.DOWNLOAD: V.DOWNLOAD_FAILED,
    Stage.ENCODE: V.ENCODING_FAILED,
    Stage.ENCODE_CHUNK: V.ENCODING_FAILED,  # the chunk's video fails with it
    Stage.JOIN_PROXY: V.ENCODING_FAILED,
    Stage.DETECT_SCENES: V.DETECT_SCENES_FAILED,
    Stage.EXPORT: C.EXPORT_FAILED,
    Stage.KEYFRAMES: C.KEYFRAME_FAILED,
    Stage.EMBED: C.EMBEDDING_FAILED,
}

RUNNING_STATE: dict[Stage, StrEnum] = {
    Stage.DOWNLOAD: V.DOWNLOADING,
    Stage.ENCODE: V.ENCODING,
    Stage.DETECT_SCENES: V.DETECTING_SCENES,
    Stage.EXPORT: C.EXPORTING,
    Stage.KEYFRAMES: C.KEYFRAMING,
    Stage.EMBED: C.EMBEDDING,
}
