"""The CLIP backend's real loading, preprocessing and inference code, run on tiny ONNX models built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heaters.embeddings import ImageEmbedder, clear_cache, get_embedder
from heaters.embeddings.backends import sha256_file
from heaters.errors import ConfigError
from heaters.models.artifact import EMBEDDING_MODELS
from tests.embeddings.fake_clip import write_fake_clip
from tests.embeddings.images import BASES

MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])
GREEN, RED = (30, 200, 60), (220, 20, 20)
# The stand-in pools 50,176 float32 pixels, which costs ~1e-5; a wrong mean or std moves components by ~1e-2.
TOLERANCE = 1e-4


def by_hand(rgb: tuple[int, int, int], weight: np.ndarray) -> np.ndarray:
    """The embedding of a one-colour image: its normalised pixel, projected, scaled to unit length."""
    pixel = (np.array(rgb) / 255.0 - MEAN) / STD
    vector = pixel @ weight.astype(np.float64)
    return vector / np.linalg.norm(vector)


@pytest.fixture
def model_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    path = tmp_path / "clip-image.onnx"
    return path, write_fake_clip(path)


@pytest.fixture
def clip(model_file: tuple[Path, np.ndarray]) -> ImageEmbedder:
    return get_embedder("clip-vit-b32", clip_model_path=model_file[0])


def test_identity(clip: ImageEmbedder, model_file: tuple[Path, np.ndarray]) -> None:
    import hashlib

    assert isinstance(clip, ImageEmbedder)
    assert clip.name == "clip-vit-b32"
    assert clip.dim == EMBEDDING_MODELS[clip.name] == 512
    assert clip.version == hashlib.sha256(model_file[0].read_bytes()).hexdigest()[:12]


def test_shape_norm_and_determinism(clip: ImageEmbedder) -> None:
    images = [make() for make in BASES.values()]
    first = clip.embed(images)
    again = clip.embed(images)
    assert first.shape == (len(images), 512)
    assert first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(again, first, atol=1e-6)


def test_different_images_give_different_vectors(clip: ImageEmbedder) -> None:
    red, green = clip.embed([Image.new("RGB", (224, 224), RED), Image.new("RGB", (224, 224), GREEN)])
    assert red @ green < 0.99


def test_one_colour_image_matches_a_hand_computation(clip: ImageEmbedder, model_file: tuple[Path, np.ndarray]) -> None:
    (got,) = clip.embed([Image.new("RGB", (320, 240), (200, 100, 50))])
    np.testing.assert_allclose(got, by_hand((200, 100, 50), model_file[1]), atol=TOLERANCE)


def test_centre_crop_drops_the_sides_of_a_wide_image(clip: ImageEmbedder, model_file: tuple[Path, np.ndarray]) -> None:
    wide = Image.new("RGB", (300, 224), RED)  # short side already 224: only the crop acts
    wide.paste(Image.new("RGB", (224, 224), GREEN), (38, 0))
    (got,) = clip.embed([wide])
    np.testing.assert_allclose(got, by_hand(GREEN, model_file[1]), atol=TOLERANCE)


def test_tall_image_is_resized_by_its_short_side_then_cropped(
    clip: ImageEmbedder, model_file: tuple[Path, np.ndarray]
) -> None:
    # 448x672 -> 224x336 -> rows 56..280 kept, i.e. source rows 112..560; red bands end at 100 and start at 572.
    tall = Image.new("RGB", (448, 672), RED)
    tall.paste(Image.new("RGB", (448, 472), GREEN), (0, 100))
    (got,) = clip.embed([tall])
    np.testing.assert_allclose(got, by_hand(GREEN, model_file[1]), atol=TOLERANCE)
    # Squashing instead of cropping would keep the red bands and move the vector.
    (squashed,) = clip.embed([tall.resize((224, 224))])
    assert not np.allclose(squashed, by_hand(GREEN, model_file[1]), atol=1e-2)


def test_other_io_names_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "openai-style.onnx"
    weight = write_fake_clip(path, input_name="image")
    (got,) = get_embedder("clip-vit-b32", clip_model_path=path).embed([Image.new("RGB", (224, 224), GREEN)])
    np.testing.assert_allclose(got, by_hand(GREEN, weight), atol=TOLERANCE)


def test_wrong_dim_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "clip-256.onnx"
    write_fake_clip(path, out_dim=256)
    with pytest.raises(ConfigError, match="512") as caught:
        get_embedder("clip-vit-b32", clip_model_path=path)
    assert str(path.resolve()) in str(caught.value)


def test_token_output_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clip-tokens.onnx"
    write_fake_clip(path, tokens=True)
    with pytest.raises(ConfigError, match="per-token") as caught:
        get_embedder("clip-vit-b32", clip_model_path=path)
    assert str(path.resolve()) in str(caught.value)


def test_missing_path_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "clip.onnx"
    with pytest.raises(ConfigError, match="CLIP_MODEL_PATH") as caught:
        get_embedder("clip-vit-b32", clip_model_path=path)
    assert str(path.resolve()) in str(caught.value)


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory") as caught:
        get_embedder("clip-vit-b32", clip_model_path=tmp_path)
    assert str(tmp_path.resolve()) in str(caught.value)


def test_a_file_that_is_not_onnx_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "clip.onnx"
    path.write_bytes(b"version https://git-lfs.github.com/spec/v1\n")  # what an un-pulled LFS file looks like
    with pytest.raises(ConfigError, match="not a usable ONNX model") as caught:
        get_embedder("clip-vit-b32", clip_model_path=path)
    assert str(path.resolve()) in str(caught.value)


def test_unreadable_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as caught:
        sha256_file(tmp_path)  # reading a directory fails like an unreadable file does, even as root
    assert str(tmp_path) in str(caught.value)


def test_no_path_configured_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CLIP_MODEL_PATH"):
        get_embedder("clip-vit-b32")


def test_embedders_are_cached_per_name_and_path(tmp_path: Path) -> None:
    clear_cache()
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    write_fake_clip(first)
    write_fake_clip(second)
    a = get_embedder("clip-vit-b32", clip_model_path=first)
    assert get_embedder("clip-vit-b32", clip_model_path=tmp_path / "." / "a.onnx") is a
    assert get_embedder("clip-vit-b32", clip_model_path=second) is not a
    lite0 = get_embedder("efficientnet-lite0")
    assert get_embedder("efficientnet-lite0", clip_model_path=first) is lite0
    clear_cache()
    assert get_embedder("clip-vit-b32", clip_model_path=first) is not a
