"""Fixtures for the local server tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tmp_root() -> Iterator[Path]:
    """A temp dir PostgreSQL's system user can enter (pytest's own tmp_path sits under a 0700 dir)."""
    root = Path(tempfile.mkdtemp(prefix="heaters-devstack-test-"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)
