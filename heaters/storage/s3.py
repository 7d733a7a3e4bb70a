"""The boto3 adapter: streamed multipart transfers, verified uploads, signed URLs."""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from heaters.errors import TransientError
from heaters.storage.keys import validate_key

# Multipart above 64 MiB in 16 MiB parts: memory stays bounded whatever the file size.
TRANSFER = TransferConfig(multipart_threshold=64 * 1024**2, multipart_chunksize=16 * 1024**2, max_concurrency=4)


_SIGNED_QUERY = re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*")


def redact_signed_urls(text: str) -> str:
    """Drop the query of every URL in a message (an error shown on a page): a presigned or CloudFront
    signature is a bearer credential until it expires, and tool errors quote their input URL."""
    return _SIGNED_QUERY.sub(r"\1?…", text)


class StorageError(TransientError):
    """S3 refused or failed an operation; usually worth a retry."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    metadata: dict[str, str]


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    presign_ttl_seconds: int = 3600


def make_client(config: S3Config) -> Any:
    """A client with short connect timeouts and standard retries (path-style for local servers)."""
    return boto3.client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 5, "mode": "standard"},
            signature_version="s3v4",
            s3={"addressing_style": "path" if config.endpoint_url else "auto"},
        ),
    )


class S3Storage:
    def __init__(self, client: Any, bucket: str, *, presign_ttl_seconds: int = 3600) -> None:
        self.client, self.bucket, self.presign_ttl_seconds = client, bucket, presign_ttl_seconds

    @classmethod
    def from_config(cls, config: S3Config) -> S3Storage:
        return cls(make_client(config), config.bucket, presign_ttl_seconds=config.presign_ttl_seconds)

    def check_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"S3 bucket {self.bucket!r} is not reachable: {error}") from error

    def upload_file(
        self, path: Path, key: str, *, content_type: str | None = None, metadata: dict[str, str] | None = None
    ) -> int:
        """Stream a file up, then HEAD it and compare sizes; returns the verified size.

        `metadata` (x-amz-meta-*) lets a later run recognise a complete object without reading it.
        """
        validate_key(key)
        size = path.stat().st_size
        extra: dict[str, Any] = {
            "ContentType": content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"
        }
        if metadata:
            extra["Metadata"] = metadata
        try:
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs=extra, Config=TRANSFER)
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"upload of {key} failed: {error}") from error
        remote = self.size(key)
        if remote != size:
            raise StorageError(f"upload of {key} could not be verified: {remote} bytes stored, {size} sent")
        return size

    def download_file(self, key: str, path: Path) -> None:
        """Stream an object to disk (never whole in memory)."""
        try:
            self.client.download_file(self.bucket, key, str(path), Config=TRANSFER)
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"download of {key} failed: {error}") from error

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size and metadata, or None when it does not exist."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise StorageError(f"HEAD {key} failed: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"HEAD {key} failed: {error}") from error
        return ObjectInfo(int(head["ContentLength"]), dict(head.get("Metadata") or {}))

    def size(self, key: str) -> int | None:
        """The object's size, or None when it does not exist."""
        info = self.head(key)
        return info.size if info else None

    def delete(self, *keys: str) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (ClientError, BotoCoreError) as error:
                raise StorageError(f"delete failed: {error}") from error

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"listing {prefix!r} failed: {error}") from error
        return keys

    def presigned_get(self, key: str, *, expires_in: int | None = None) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=expires_in or self.presign_ttl_seconds,
            )
        )


class CloudFrontSigner:
    """Signed CloudFront URLs (canned policy) with botocore's signer; RSA-SHA1 as CloudFront requires."""

    def __init__(self, domain: str, key_pair_id: str, private_key_pem: str, *, ttl_seconds: int = 3600) -> None:
        from botocore.signers import CloudFrontSigner as _Signer
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("CLOUDFRONT_PRIVATE_KEY must be an RSA private key in PEM form")

        def rsa_signer(message: bytes) -> bytes:
            return key.sign(message, padding.PKCS1v15(), hashes.SHA1())

        self.domain = domain.removeprefix("https://").rstrip("/")
        self.ttl_seconds = ttl_seconds
        self._signer = _Signer(key_pair_id, rsa_signer)

    def url(self, key: str, *, expires_in: int | None = None) -> str:
        expires = datetime.now(UTC) + timedelta(seconds=expires_in or self.ttl_seconds)
        return str(self._signer.generate_presigned_url(f"https://{self.domain}/{key}", date_less_than=expires))


class MediaUrls:
    """Where a browser or ffmpeg fetches an object: CloudFront when configured, else presigned S3."""

    def __init__(self, storage: S3Storage, cloudfront: CloudFrontSigner | None = None) -> None:
        self.storage, self.cloudfront = storage, cloudfront

    def get_url(self, key: str, *, expires_in: int | None = None) -> str:
        if self.cloudfront is not None:
            return self.cloudfront.url(key, expires_in=expires_in)
        return self.storage.presigned_get(key, expires_in=expires_in)
