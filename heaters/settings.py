"""The one typed configuration object, read from the environment (and `.env`) at start.

Nothing else in Heaters reads `os.environ`: composition roots call `get_settings()` and hand values to
adapters as arguments. Names follow the seed deployment guide where it has one (see README's table).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from heaters.errors import ConfigError

# Written by `heaters up` (make run) so that a second shell's `heaters ...` finds the local stack.
STACK_ENV_FILE = Path(".data/stack.env")


def normalize_database_url(value: str) -> str:
    """Accept Render's and Heroku's `postgres://` spelling; refuse anything that is not PostgreSQL."""
    if value.startswith("postgres://"):
        value = "postgresql://" + value.removeprefix("postgres://")
    if not value.startswith(("postgresql://", "postgresql+psycopg://")):
        raise ValueError("must be a postgresql:// URL")
    return value


def sqlalchemy_database_url(value: str) -> str:
    """psycopg 3 is our driver; SQLAlchemy needs it named in the URL."""
    value = normalize_database_url(value)
    if value.startswith("postgresql+psycopg://"):
        return value
    return "postgresql+psycopg://" + value.removeprefix("postgresql://")


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class _EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(str(STACK_ENV_FILE), ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )


class WebSettings(_EnvSettings):
    """What the web server's own config (rxconfig.py) needs; no secrets, so a build can read it."""

    app_env: Literal["development", "test", "production"] = Field("development", validation_alias=_env("APP_ENV"))
    public_host: str = Field("127.0.0.1", validation_alias=_env("PUBLIC_HOST", "PHX_HOST", "RENDER_EXTERNAL_HOSTNAME"))
    port: int = Field(3000, ge=1, le=65535, validation_alias=_env("PORT"))
    # Where `heaters web` listens: 127.0.0.1 in development, 0.0.0.0 in a container.
    bind_host: str = Field("127.0.0.1", validation_alias=_env("BIND_HOST"))

    @property
    def origins(self) -> list[str]:
        """The origins browsers use to reach us: CORS and the websocket accept only these."""
        local = [f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"]
        public = [f"https://{self.public_host}", f"http://{self.public_host}:{self.port}"]
        return list(dict.fromkeys(local + public))


class ScheduleSettings(_EnvSettings):
    """The schedule's periods: periodiq needs them when the actors are declared, and importing the
    actors must need no secret (the image is built with none)."""

    dispatcher_cron: str = Field("* * * * *", validation_alias=_env("DISPATCHER_CRON"))
    cleanup_cron: str = Field("0 */4 * * *", validation_alias=_env("PLAYBACK_CLEANUP_CRON"))


class Settings(WebSettings, ScheduleSettings):
    secret_key: SecretStr = Field(validation_alias=_env("SECRET_KEY", "SECRET_KEY_BASE"))

    database_url: str = Field(validation_alias=_env("DATABASE_URL"))
    redis_url: str = Field(validation_alias=_env("REDIS_URL"))

    s3_endpoint_url: str | None = Field(None, validation_alias=_env("S3_ENDPOINT_URL"))
    s3_bucket: str = Field(validation_alias=_env("S3_BUCKET", "S3_BUCKET_NAME", "PROD_S3_BUCKET_NAME"))
    aws_access_key_id: str | None = Field(None, validation_alias=_env("AWS_ACCESS_KEY_ID"))
    aws_secret_access_key: SecretStr | None = Field(None, validation_alias=_env("AWS_SECRET_ACCESS_KEY"))
    aws_region: str = Field("us-east-1", validation_alias=_env("AWS_REGION"))
    presign_ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600, validation_alias=_env("PRESIGN_TTL_SECONDS"))

    cloudfront_domain: str | None = Field(None, validation_alias=_env("CLOUDFRONT_DOMAIN", "PROD_CLOUDFRONT_DOMAIN"))
    cloudfront_key_pair_id: str | None = Field(None, validation_alias=_env("CLOUDFRONT_KEY_PAIR_ID"))
    cloudfront_private_key: SecretStr | None = Field(None, validation_alias=_env("CLOUDFRONT_PRIVATE_KEY"))

    worker_queues: str | None = Field(None, validation_alias=_env("WORKER_QUEUES", "OBAN_QUEUES"))
    scheduler_enabled: bool | None = Field(None, validation_alias=_env("SCHEDULER_ENABLED", "OBAN_SCHEDULER"))
    playback_cache_dir: Path = Field(Path("/tmp/heaters-playback"), validation_alias=_env("PLAYBACK_CACHE_DIR"))
    # Web and temp_clips workers on separate disks (Render): workers also publish each temp clip to S3
    # (`playback/`), and a web host that lacks one pulls it from there. One host: leave it off.
    playback_shared: bool = Field(False, validation_alias=_env("PLAYBACK_SHARED"))
    temp_clip_timeout_seconds: int = Field(120, ge=5, validation_alias=_env("TEMP_CLIP_TIMEOUT_SECONDS"))
    playback_cache_max_age_minutes: int = Field(15, ge=1, validation_alias=_env("PLAYBACK_CACHE_MAX_AGE_MINUTES"))
    playback_cache_max_bytes: int = Field(1024**3, ge=1, validation_alias=_env("PLAYBACK_CACHE_MAX_BYTES"))
    playback_cache_min_free_bytes: int = Field(
        500 * 1024**2, ge=0, validation_alias=_env("PLAYBACK_CACHE_MIN_FREE_BYTES")
    )

    # `json`: one JSON object a line (job, queue, entity and duration as fields); `text`: for people.
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("LOG_FORMAT"))
    work_dir: Path = Field(Path("/tmp/heaters-work"), validation_alias=_env("WORK_DIR"))
    # Prometheus: each process of a host writes its counters here; a scrape adds them up.
    metrics_dir: Path = Field(Path("/tmp/heaters-metrics"), validation_alias=_env("METRICS_DIR"))
    # `heaters worker` serves its host's /metrics on this port (0: off); the web's /metrics is admin-only.
    metrics_port: int = Field(0, ge=0, le=65535, validation_alias=_env("METRICS_PORT"))
    # A scraper's bearer token for the web's /metrics (admins signed in need none).
    metrics_token: SecretStr | None = Field(None, validation_alias=_env("METRICS_TOKEN"))
    # Review: the current clip plus this many prepared ahead, each leased to the tab that shows it.
    review_prefetch: int = Field(5, ge=1, le=20, validation_alias=_env("REVIEW_PREFETCH"))
    review_lease_seconds: int = Field(90, ge=15, le=3600, validation_alias=_env("REVIEW_LEASE_SECONDS"))
    session_ttl_hours: int = Field(12, ge=1, le=24 * 30, validation_alias=_env("SESSION_TTL_HOURS"))

    master_enabled: bool = Field(True, validation_alias=_env("MASTER_ENABLED"))
    master_crf: int = Field(18, ge=0, le=51, validation_alias=_env("MASTER_CRF"))
    proxy_crf: int = Field(28, ge=0, le=51, validation_alias=_env("PROXY_CRF"))
    # The proxy is encoded in chunks of this length, each a job any worker takes, scanned as it is encoded,
    # so review starts on the first scenes while the rest encodes (docs/benchmarks.md has the measurement
    # behind the default). 0 encodes it in one pass, scanned afterwards.
    proxy_chunk_seconds: float = Field(20.0, ge=0, validation_alias=_env("PROXY_CHUNK_SECONDS"))
    scene_detector: Literal["adaptive", "content", "histogram"] = Field(
        "adaptive", validation_alias=_env("SCENE_DETECTOR")
    )
    scene_threshold: float | None = Field(None, gt=0, validation_alias=_env("SCENE_THRESHOLD"))
    min_scene_seconds: float = Field(0.5, ge=0, validation_alias=_env("MIN_SCENE_SECONDS"))

    # Undo of an approval stays possible this long: the export of an approved clip waits for it.
    export_grace_seconds: int = Field(30, ge=0, le=24 * 3600, validation_alias=_env("EXPORT_GRACE_SECONDS"))
    # After review: keyframes, then one embedding per clip from them (heaters.embeddings names the models).
    keyframe_strategy: Literal["multi", "midpoint"] = Field("multi", validation_alias=_env("KEYFRAME_STRATEGY"))
    embedding_model: str = Field("efficientnet-lite0", validation_alias=_env("EMBEDDING_MODEL"))
    # The CLIP image tower as an ONNX file (no PyPI package ships CLIP weights; see docs/deployment.md).
    clip_model_path: Path | None = Field(None, validation_alias=_env("CLIP_MODEL_PATH"))

    ffmpeg_timeout_seconds: int = Field(6 * 3600, ge=1, validation_alias=_env("FFMPEG_TIMEOUT_SECONDS"))
    ytdlp_timeout_seconds: int = Field(3 * 3600, ge=1, validation_alias=_env("YTDLP_TIMEOUT_SECONDS"))
    job_max_attempts: int = Field(5, ge=1, le=50, validation_alias=_env("JOB_MAX_ATTEMPTS"))
    job_backoff_seconds: float = Field(30.0, gt=0, validation_alias=_env("JOB_BACKOFF_SECONDS"))
    job_lease_seconds: int = Field(120, ge=10, validation_alias=_env("JOB_LEASE_SECONDS"))

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError(
                "must be at least 32 characters (make one: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value

    @model_validator(mode="after")
    def _cloudfront_complete(self) -> Settings:
        signing = [self.cloudfront_key_pair_id, self.cloudfront_private_key]
        if any(signing) and not (all(signing) and self.cloudfront_domain):
            raise ValueError(
                "CLOUDFRONT_DOMAIN, CLOUDFRONT_KEY_PAIR_ID and CLOUDFRONT_PRIVATE_KEY must be set together"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        return sqlalchemy_database_url(self.database_url)


def env_name(field: str) -> str:
    """The environment variable a settings field is read from (its first alias)."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field.upper()


def describe_errors(error: ValidationError) -> str:
    """Turn pydantic's report into lines that name the environment variable to fix."""
    lines = []
    for item in error.errors():
        where = str(item["loc"][0]) if item["loc"] else ""  # the alias read, or the field's name
        name = env_name(where) if where in Settings.model_fields else where or "configuration"
        if item["type"] == "missing":
            lines.append(f"{name} is not set")
            continue
        message = item["msg"].removeprefix("Value error, ")
        if not where:  # a rule across variables already names them
            lines.append(message)
            continue
        lines.append(f"{name}: {message[:1].lower()}{message[1:]}")
    return "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read and validate; raise ConfigError with one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(f"Invalid configuration: {describe_errors(error)}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
