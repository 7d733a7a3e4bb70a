"""Names: what the settings may say, and what the schema indexes."""

from __future__ import annotations

import pytest

from heaters.embeddings import MODEL_NAMES, get_embedder
from heaters.errors import ConfigError
from heaters.models.artifact import EMBEDDING_MODELS


def test_model_names_are_the_indexed_models() -> None:
    assert MODEL_NAMES == ("efficientnet-lite0", "clip-vit-b32")
    assert set(MODEL_NAMES) == set(EMBEDDING_MODELS)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="resnet-50") as caught:
        get_embedder("resnet-50")
    for name in MODEL_NAMES:
        assert name in str(caught.value)
