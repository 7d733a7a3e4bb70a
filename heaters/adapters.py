"""Build adapters from the settings: the composition roots (web, worker, CLI) call these."""

from __future__ import annotations

from functools import lru_cache

import redis

from heaters.playback.cache import PlaybackCache
from heaters.settings import Settings, get_settings
from heaters.storage.s3 import CloudFrontSigner, MediaUrls, S3Config, S3Storage


def s3_config(settings: Settings) -> S3Config:
    secret = settings.aws_secret_access_key
    return S3Config(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.aws_region,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
        presign_ttl_seconds=settings.presign_ttl_seconds,
    )


@lru_cache(maxsize=1)
def get_storage() -> S3Storage:
    return S3Storage.from_config(s3_config(get_settings()))


@lru_cache(maxsize=1)
def get_media_urls() -> MediaUrls:
    settings = get_settings()
    signer = None
    if settings.cloudfront_domain and settings.cloudfront_key_pair_id and settings.cloudfront_private_key:
        signer = CloudFrontSigner(
            settings.cloudfront_domain,
            settings.cloudfront_key_pair_id,
            settings.cloudfront_private_key.get_secret_value(),
            ttl_seconds=settings.presign_ttl_seconds,
        )
    return MediaUrls(get_storage(), signer)


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, socket_connect_timeout=2, socket_timeout=5)


@lru_cache(maxsize=1)
def get_playback_cache() -> PlaybackCache:
    return PlaybackCache(get_settings().playback_cache_dir)
