"""Image -> NCHW float32 batches, exactly as each model was trained to see them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

INPUT_SIZE = 224

# OpenAI CLIP's normalisation (RGB, on [0, 1] pixels).
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def _nchw_float(images: Sequence[Image.Image]) -> np.ndarray:
    """Stack 224x224 RGB images as one contiguous NCHW float32 array of 0-255 values (one copy, then in place)."""
    return (
        np.stack([np.asarray(image, dtype=np.uint8) for image in images])
        .transpose(0, 3, 1, 2)
        .astype(np.float32, order="C")
    )


def efficientnet_batch(images: Sequence[Image.Image]) -> np.ndarray:
    """TensorFlow-style input of the Lite models: RGB, squashed to 224x224, `(x - 127) / 128`."""
    batch = _nchw_float(
        [image.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR) for image in images]
    )
    batch -= 127.0
    batch /= 128.0
    return batch


def clip_resize_crop(image: Image.Image, size: int = INPUT_SIZE) -> Image.Image:
    """CLIP's geometry: shortest side to `size` (bicubic), then the centred `size` x `size` square.

    Rounding follows torchvision's Resize/CenterCrop, which OpenAI's and Hugging Face's pipelines use.
    """
    rgb = image.convert("RGB")
    width, height = rgb.size
    short, long = min(width, height), max(width, height)
    new_long = int(size * long / short)
    new_size = (size, new_long) if width <= height else (new_long, size)
    if new_size != rgb.size:
        rgb = rgb.resize(new_size, Image.Resampling.BICUBIC)
    width, height = rgb.size
    left, top = round((width - size) / 2.0), round((height - size) / 2.0)
    return rgb.crop((left, top, left + size, top + size))


def clip_batch(images: Sequence[Image.Image]) -> np.ndarray:
    """CLIP's input: resize-and-crop to 224, [0, 1], minus CLIP_MEAN, over CLIP_STD, NCHW."""
    batch = _nchw_float([clip_resize_crop(image) for image in images])
    batch /= 255.0
    batch -= CLIP_MEAN[:, None, None]
    batch /= CLIP_STD[:, None, None]
    return batch
