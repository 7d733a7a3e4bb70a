"""Synthetic test scenes and the edits a re-upload goes through; all drawn in code, nothing downloaded."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

SIZE = (256, 192)  # 4:3, so the embedders' own resizing is exercised


def _from_array(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


def _grid() -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0 : SIZE[1], 0 : SIZE[0]].astype(np.float32)
    return xs / (SIZE[0] - 1), ys / (SIZE[1] - 1)


def circle() -> Image.Image:
    image = Image.new("RGB", SIZE, "white")
    ImageDraw.Draw(image).ellipse((70, 40, 190, 160), fill=(210, 30, 30))
    return image


def squares() -> Image.Image:
    image = Image.new("RGB", SIZE, (240, 220, 40))
    draw = ImageDraw.Draw(image)
    for x in range(10, SIZE[0], 48):
        for y in range(10, SIZE[1], 48):
            draw.rectangle((x, y, x + 28, y + 28), fill=(30, 50, 200))
    return image


def horizontal_gradient() -> Image.Image:
    x, _ = _grid()
    return _from_array(np.stack([20 * (1 - x), 230 * (1 - x), 40 * (1 - x)], axis=-1))


def radial_gradient() -> Image.Image:
    x, y = _grid()
    r = np.clip(np.hypot(x - 0.5, y - 0.5) / 0.7, 0, 1)
    inner, outer = np.array([120, 20, 160]), np.array([250, 150, 30])
    return _from_array(inner * (1 - r[..., None]) + outer * r[..., None])


def noise_texture() -> Image.Image:
    channels = [Image.effect_noise(SIZE, 80).filter(ImageFilter.GaussianBlur(1.2)) for _ in range(3)]
    return Image.merge("RGB", channels)


def diagonal_stripes() -> Image.Image:
    x, y = _grid()
    stripes = (np.floor((x * SIZE[0] + y * SIZE[1]) / 16) % 2)[..., None]
    return _from_array(np.repeat(stripes * 235 + 10, 3, axis=-1))


def checkerboard() -> Image.Image:
    x, y = _grid()
    cells = ((np.floor(x * 6) + np.floor(y * 4)) % 2)[..., None]
    return _from_array(cells * np.array([20, 160, 150]) + (1 - cells) * np.array([90, 90, 90]))


def landscape() -> Image.Image:
    image = Image.new("RGB", SIZE, (120, 180, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 120, SIZE[0], SIZE[1]), fill=(40, 140, 50))
    draw.ellipse((190, 20, 230, 60), fill=(255, 220, 60))
    draw.polygon([(40, 120), (40, 80), (75, 55), (110, 80), (110, 120)], fill=(130, 80, 40))
    return image


def text_lines() -> Image.Image:
    rng = np.random.default_rng(7)
    image = Image.new("RGB", SIZE, (25, 25, 35))
    draw = ImageDraw.Draw(image)
    for top in range(12, SIZE[1] - 12, 18):
        x = 12
        while x < SIZE[0] - 30:
            width = int(rng.integers(6, 26))
            draw.rectangle((x, top, x + width, top + 8), fill=(235, 235, 235))
            x += width + int(rng.integers(4, 9))
    return image


def vertical_gradient() -> Image.Image:
    _, y = _grid()
    return _from_array(np.stack([40 + 215 * y, 60 + 195 * y, np.full_like(y, 230)], axis=-1))


BASES: dict[str, Callable[[], Image.Image]] = {
    "circle": circle,
    "squares": squares,
    "horizontal_gradient": horizontal_gradient,
    "radial_gradient": radial_gradient,
    "noise_texture": noise_texture,
    "diagonal_stripes": diagonal_stripes,
    "checkerboard": checkerboard,
    "landscape": landscape,
    "text_lines": text_lines,
    "vertical_gradient": vertical_gradient,
}


def crop(image: Image.Image) -> Image.Image:
    width, height = image.size
    return image.crop((int(width * 0.06), int(height * 0.04), int(width * 0.95), int(height * 0.97)))


def brighten(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(1.25)


def jpeg_30(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=30)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def blur(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(1.5))


EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "crop": crop,
    "brighten": brighten,
    "jpeg_30": jpeg_30,
    "blur": blur,
    "mirror": ImageOps.mirror,
}
