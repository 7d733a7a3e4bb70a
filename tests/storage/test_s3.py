"""The S3 adapter against a real S3 server (SeaweedFS): verified uploads, streaming, signed URLs."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from heaters.adapters import get_storage
from heaters.storage.s3 import CloudFrontSigner, MediaUrls, StorageError


def test_upload_is_verified_and_download_streams(app_env: dict[str, str], tmp_path: Path) -> None:
    storage = get_storage()
    source = tmp_path / "blob.bin"
    source.write_bytes(os.urandom(70 * 1024 * 1024 + 13))  # above the multipart threshold
    assert storage.upload_file(source, "tests/blob.bin") == source.stat().st_size
    assert storage.size("tests/blob.bin") == source.stat().st_size
    target = tmp_path / "back.bin"
    storage.download_file("tests/blob.bin", target)
    assert target.read_bytes() == source.read_bytes()
    storage.delete("tests/blob.bin")
    assert storage.size("tests/blob.bin") is None


def test_missing_objects_and_bad_keys_are_clear_errors(app_env: dict[str, str], tmp_path: Path) -> None:
    storage = get_storage()
    with pytest.raises(StorageError, match=r"download of nothing/here\.mp4 failed"):
        storage.download_file("nothing/here.mp4", tmp_path / "x")
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.upload_file(tmp_path, "/absolute")


def test_presigned_urls_work_expire_and_refuse_tampering(app_env: dict[str, str], tmp_path: Path) -> None:
    storage = get_storage()
    (tmp_path / "a.txt").write_text("hello")
    storage.upload_file(tmp_path / "a.txt", "tests/a.txt")
    url = storage.presigned_get("tests/a.txt", expires_in=60)
    assert httpx.get(url).text == "hello"
    ranged = httpx.get(url, headers={"Range": "bytes=1-3"})
    assert ranged.status_code == 206 and ranged.text == "ell"
    assert httpx.get(url.replace("tests/a.txt", "tests/b.txt")).status_code == 403
    short = storage.presigned_get("tests/a.txt", expires_in=1)
    time.sleep(2.1)
    assert httpx.get(short).status_code == 403


def test_cloudfront_urls_are_signed_with_the_configured_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signer = CloudFrontSigner("https://d111.cloudfront.net/", "K2JCJMDEHXQW5F", pem, ttl_seconds=600)
    url = signer.url("proxies/a_1_proxy.mp4")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://d111.cloudfront.net/proxies/a_1_proxy.mp4"
    assert query["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    expires = int(query["Expires"])
    assert 590 <= expires - time.time() <= 610

    def cf_b64decode(value: str) -> bytes:
        return base64.b64decode(value.replace("-", "+").replace("_", "=").replace("~", "/"))

    policy = json.dumps(
        {
            "Statement": [
                {
                    "Resource": "https://d111.cloudfront.net/proxies/a_1_proxy.mp4",
                    "Condition": {"DateLessThan": {"AWS:EpochTime": expires}},
                }
            ]
        },
        separators=(",", ":"),
    ).encode()
    key.public_key().verify(cf_b64decode(query["Signature"]), policy, padding.PKCS1v15(), hashes.SHA1())


def test_media_urls_prefer_cloudfront_when_configured(app_env: dict[str, str]) -> None:
    storage = get_storage()
    assert "X-Amz-Signature" in MediaUrls(storage).get_url("proxies/x.mp4")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signed = MediaUrls(storage, CloudFrontSigner("d1.cloudfront.net", "KID", pem)).get_url("proxies/x.mp4")
    assert signed.startswith("https://d1.cloudfront.net/proxies/x.mp4?") and "Signature=" in signed
