"""Preprocessing by hand: the exact numbers each model is fed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from heaters.embeddings.preprocess import clip_batch, clip_resize_crop, efficientnet_batch


def test_efficientnet_input_is_tf_style() -> None:
    image = Image.new("RGB", (300, 200), (255, 127, 0))
    batch = efficientnet_batch([image, image.convert("L")])
    assert batch.shape == (2, 3, 224, 224)
    assert batch.dtype == np.float32
    assert batch.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(batch[0, :, 100, 100], [128 / 128, 0.0, -127 / 128])
    grey = round(0.299 * 255 + 0.587 * 127)  # PIL's L conversion (ITU-R 601-2 luma)
    np.testing.assert_allclose(batch[1, :, 0, 0], (grey - 127) / 128, atol=1 / 128)


def test_efficientnet_channels_are_rgb_planes() -> None:
    image = Image.new("RGB", (224, 224), (10, 20, 30))
    image.putpixel((5, 7), (250, 0, 127))
    batch = efficientnet_batch([image])
    np.testing.assert_array_equal(batch[0, :, 7, 5], [(250 - 127) / 128, -127 / 128, 0.0])
    np.testing.assert_array_equal(batch[0, :, 0, 0], [(10 - 127) / 128, (20 - 127) / 128, (30 - 127) / 128])


@pytest.mark.parametrize("size", [(224, 224), (640, 360), (360, 640), (225, 224), (1000, 230), (3, 2)])
def test_clip_output_is_a_224_square(size: tuple[int, int]) -> None:
    assert clip_resize_crop(Image.new("RGB", size)).size == (224, 224)


@pytest.mark.parametrize(("width", "left"), [(225, 0), (227, 2), (300, 38)])
def test_clip_crop_offset_rounds_like_torchvision(width: int, left: int) -> None:
    """torchvision's CenterCrop: left = int(round((width - 224) / 2)), Python's round-half-to-even."""
    image = Image.new("RGB", (width, 224))
    image.putpixel((left, 0), (255, 255, 255))
    out = clip_resize_crop(image)
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((1, 0)) == (0, 0, 0)


def test_clip_pixel_by_hand() -> None:
    wide = Image.new("RGB", (300, 224), (0, 0, 0))
    wide.putpixel((38, 0), (200, 100, 50))  # the crop keeps columns 38..261
    batch = clip_batch([wide])
    assert batch.shape == (1, 3, 224, 224)
    assert batch.flags["C_CONTIGUOUS"]
    mean = np.array([0.48145466, 0.4578275, 0.40821073])
    std = np.array([0.26862954, 0.26130258, 0.27577711])
    np.testing.assert_allclose(batch[0, :, 0, 0], (np.array([200, 100, 50]) / 255 - mean) / std, atol=1e-5)
    np.testing.assert_allclose(batch[0, :, 1, 1], (0 - mean) / std, atol=1e-5)
