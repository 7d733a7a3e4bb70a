"""The playback cache directory of one host: finished files appear atomically, never half-written.

A worker writes `.clip_….mp4.<random>.part` and renames it into place, so the media route (and the cleanup) only
ever see complete files. When playback is shared (web and workers on separate disks), a web host that
lacks a file pulls it once from S3 (`playback/…`) into its own directory and serves it from there.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from heaters.playback import names
from heaters.storage.s3 import S3Storage

PART_SUFFIX = ".part"


class PlaybackCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, filename: str) -> Path:
        if names.parse(filename) is None:
            raise ValueError(f"not a temp clip name: {filename!r}")
        return self.root / filename

    def exists(self, filename: str) -> bool:
        return self.path(filename).is_file()

    def partial(self, filename: str) -> Path:
        """Where a file is written before it is complete: hidden, never matched by the route, unique per writer."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / f".{self.path(filename).name}.{secrets.token_hex(4)}{PART_SUFFIX}"

    def commit(self, partial: Path, filename: str) -> Path:
        final = self.path(filename)
        os.replace(partial, final)
        return final

    def _lock(self, filename: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(filename, threading.Lock())

    def fetch(self, storage: S3Storage, filename: str, key: str) -> Path:
        """Pull a published temp clip into this host's cache; concurrent requests download it once."""
        with self._lock(filename):
            final = self.path(filename)
            if final.is_file():
                return final
            part = self.partial(filename)
            try:
                storage.download_file(key, part)
                return self.commit(part, filename)
            finally:
                part.unlink(missing_ok=True)
                with self._guard:
                    self._locks.pop(filename, None)
