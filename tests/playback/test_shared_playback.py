"""Shared playback: the worker host cuts into its own cache and publishes to S3; a web host on another disk pulls.

One process plays both hosts by switching PLAYBACK_CACHE_DIR (and PLAYBACK_SHARED) between the steps.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from heaters.adapters import get_storage
from heaters.playback import names, serve

from .helpers import Playback, Proxy, listing


def _cut_on_the_worker(playback: Playback, proxy: Proxy, *, shared: bool) -> tuple[dict[str, Any], Path]:
    worker_cache = playback.use(playback.root / "worker_cache", shared=shared)
    row = playback.generate(playback.clip(playback.video(proxy), 37, 66))
    assert row["state"] == "ready", row["error"]
    return row, worker_cache / row["filename"]


def test_a_web_host_without_the_file_pulls_it_from_s3_and_serves_the_same_bytes(
    client: TestClient, playback: Playback, proxies: dict[str, Proxy]
) -> None:
    row, made = _cut_on_the_worker(playback, proxies["29.97"], shared=True)
    data = made.read_bytes()
    key = names.s3_key(row["filename"])
    assert key == f"playback/{row['filename']}"
    assert row["s3_key"] == key
    assert get_storage().size(key) == len(data) == row["size_bytes"]

    web_cache = playback.use(playback.root / "web_cache", shared=True)
    assert listing(web_cache) == []
    response = client.get(names.media_url(row["filename"]))
    assert response.status_code == 200
    assert response.content == data
    assert listing(web_cache) == [row["filename"]], "the pulled file must be kept (and no .part left)"
    assert (web_cache / row["filename"]).read_bytes() == data

    # Later range requests are answered from this host's copy.
    get_storage().delete(key)
    ranged = client.get(names.media_url(row["filename"]), headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == data[100:200]


def test_concurrent_requests_on_a_web_host_download_once(
    playback: Playback, proxies: dict[str, Proxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    row, made = _cut_on_the_worker(playback, proxies["25"], shared=True)
    web_cache = playback.use(playback.root / "web_cache", shared=True)
    monkeypatch.setattr(serve, "_recorded", {})
    storage = get_storage()
    downloads: list[str] = []
    real_download = storage.download_file

    def counted(key: str, path: Path) -> None:
        downloads.append(key)
        real_download(key, path)

    monkeypatch.setattr(storage, "download_file", counted)
    barrier = threading.Barrier(6)
    results: list[Path | None] = []

    def ask() -> None:
        barrier.wait(timeout=30)
        results.append(serve.resolve(row["filename"]))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [web_cache / row["filename"]] * 6
    assert downloads == [row["s3_key"]]
    assert listing(web_cache) == [row["filename"]]
    assert (web_cache / row["filename"]).read_bytes() == made.read_bytes()


def test_without_shared_playback_nothing_goes_to_s3_and_another_host_answers_404(
    client: TestClient, playback: Playback, proxies: dict[str, Proxy]
) -> None:
    row, made = _cut_on_the_worker(playback, proxies["25"], shared=False)
    assert row["s3_key"] is None
    assert get_storage().size(names.s3_key(row["filename"])) is None

    web_cache = playback.use(playback.root / "web_cache", shared=False)
    response = client.get(names.media_url(row["filename"]))
    assert response.status_code == 404 and response.json() == {"error": "not found"}
    assert listing(web_cache) == []

    # The worker's own host (one disk for web and workers) serves it.
    playback.use(made.parent, shared=False)
    assert client.get(names.media_url(row["filename"])).content == made.read_bytes()


def test_a_published_file_gone_from_s3_is_a_clean_404(
    client: TestClient, playback: Playback, proxies: dict[str, Proxy]
) -> None:
    row, _ = _cut_on_the_worker(playback, proxies["25"], shared=True)
    get_storage().delete(row["s3_key"])
    web_cache = playback.use(playback.root / "web_cache", shared=True)
    response = client.get(names.media_url(row["filename"]))
    assert response.status_code == 404 and response.json() == {"error": "not found"}
    assert listing(web_cache) == [], "a failed pull must not leave a partial file"
