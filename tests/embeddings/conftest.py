from __future__ import annotations

import pytest

from heaters.embeddings import ImageEmbedder, get_embedder


@pytest.fixture(scope="module")
def lite0() -> ImageEmbedder:
    """The shipped EfficientNet-Lite0 embedder (one session for the module: building one takes a moment)."""
    return get_embedder("efficientnet-lite0")
