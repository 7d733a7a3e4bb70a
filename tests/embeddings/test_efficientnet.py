"""The shipped EfficientNet-Lite0 model, run for real: stable, unit vectors, and edits find their originals."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heaters.embeddings import ImageEmbedder, efficientnet
from heaters.embeddings.backends import OnnxImageEmbedder, sha256_file
from heaters.errors import ConfigError
from heaters.models.artifact import EMBEDDING_MODELS
from tests.embeddings.images import BASES, EDITS, landscape


def test_shipped_weights_match_the_pinned_checksum() -> None:
    assert sha256_file(efficientnet.WEIGHTS_PATH) == efficientnet.WEIGHTS_SHA256


def test_identity_and_dim(lite0: ImageEmbedder) -> None:
    assert isinstance(lite0, ImageEmbedder)
    assert lite0.name == "efficientnet-lite0"
    assert lite0.dim == EMBEDDING_MODELS[lite0.name] == 1280
    assert lite0.version == efficientnet.WEIGHTS_SHA256[:12]


def test_same_image_same_unit_vector(lite0: ImageEmbedder) -> None:
    image = landscape()
    first = lite0.embed([image])
    again = lite0.embed([image.copy(), image])
    assert first.shape == (1, 1280)
    assert first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(again[0], first[0], atol=1e-6)
    np.testing.assert_allclose(again[1], first[0], atol=1e-6)


def test_a_vector_does_not_depend_on_its_batch(lite0: ImageEmbedder) -> None:
    images = [make() for make in BASES.values()] * 4  # 40 images: more than one internal chunk
    alone = np.concatenate([lite0.embed([image]) for image in images[:10]])
    batched = lite0.embed(images)
    assert batched.shape == (40, 1280)
    np.testing.assert_allclose(batched[:10], alone, atol=1e-5)
    np.testing.assert_allclose(batched[30:], alone, atol=1e-5)


def test_empty_input_gives_an_empty_matrix(lite0: ImageEmbedder) -> None:
    out = lite0.embed([])
    assert out.shape == (0, 1280)
    assert out.dtype == np.float32


def test_any_pil_mode_is_accepted(lite0: ImageEmbedder) -> None:
    image = landscape()
    modes = [image.convert("L"), image.convert("RGBA"), image.convert("P"), image.convert("CMYK")]
    out = lite0.embed(modes)
    assert out.shape == (4, 1280)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    # The same scene in another mode is still far closer to itself than to an unrelated scene.
    other = lite0.embed([BASES["checkerboard"]()])[0]
    reference = lite0.embed([image])[0]
    for vector in out[1:]:  # L drops colour, so only the colour-keeping modes are compared
        assert vector @ reference > vector @ other


def test_raw_features_are_pooled_relu6_activations(lite0: ImageEmbedder) -> None:
    """Average-pooled ReLU6 outputs lie in [0, 6]; Swish (the `set_swish` pitfall) would allow negatives."""
    assert isinstance(lite0, OnnxImageEmbedder)
    raw = lite0.raw([make() for make in BASES.values()])
    assert raw.shape == (len(BASES), 1280)
    assert raw.min() >= 0.0
    assert raw.max() <= 6.0
    assert ((raw > 0).mean(axis=1) > 0.1).all()  # and not a dead network either


def test_each_edit_is_nearest_to_its_own_original(lite0: ImageEmbedder) -> None:
    names = list(BASES)
    bases = [BASES[name]() for name in names]
    base_vectors = lite0.embed(bases)
    misses = []
    for edit_name, edit in EDITS.items():
        similarities = lite0.embed([edit(image) for image in bases]) @ base_vectors.T
        for row, name in enumerate(names):
            nearest = names[int(np.argmax(similarities[row]))]
            if nearest != name:
                misses.append(f"{edit_name}({name}) -> {nearest}")
    assert misses == []


def test_similar_images_score_higher_than_dissimilar_ones(lite0: ImageEmbedder) -> None:
    circle, landscape_, stripes = (BASES[name]() for name in ("circle", "landscape", "diagonal_stripes"))
    moved = Image.new("RGB", circle.size, "white")
    moved.paste(circle.crop((20, 0, circle.width, circle.height)), (0, 0))
    original, shifted, scene, pattern = lite0.embed([circle, moved, landscape_, stripes])
    assert original @ shifted > original @ scene
    assert original @ shifted > original @ pattern


def test_checksum_mismatch_is_a_config_error(tmp_path: Path) -> None:
    copy = tmp_path / "efficientnet-lite0.onnx"
    shutil.copyfile(efficientnet.WEIGHTS_PATH, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="sha256") as caught:
        efficientnet.load(copy)
    assert str(copy) in str(caught.value)


def test_missing_weights_are_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "gone.onnx"
    with pytest.raises(ConfigError, match="missing") as caught:
        efficientnet.load(missing)
    assert str(missing) in str(caught.value)


def test_a_wrong_dim_model_with_a_matching_checksum_is_refused(tmp_path: Path) -> None:
    """The dim check stands on its own: a model that passes the checksum but yields 512-d vectors is refused."""
    from tests.embeddings.fake_clip import write_fake_clip

    path = tmp_path / "not-lite0.onnx"
    write_fake_clip(path, out_dim=512, input_name="images")
    with pytest.raises(ConfigError, match="1280") as caught:
        efficientnet.load(path, sha256=sha256_file(path))
    assert str(path) in str(caught.value)
