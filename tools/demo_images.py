"""Image helpers for the demo: decode /view PNGs, labelled grids (charts live in tools/charts.py).

The figures computed from the images are defined in reference/metrics.py, the one metrics module;
per_image_brightness below only returns its brightness of decoded images as numpy."""
from __future__ import annotations

import io

import numpy as np
from charts import label_font
from PIL import Image, ImageDraw
from pure_core import metrics


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes → float64 array [H, W, 3] in 0..1."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def labelled_grid(rows: list[tuple[str, list[np.ndarray]]], columns: int = 8, scale: int = 1,
                  title: str | None = None) -> Image.Image:
    """One labelled row per configuration, the first `columns` images of each, same seeds per column."""
    font = label_font(14)
    label_height, gap = 22, 4
    cell_h, cell_w = rows[0][1][0].shape[0] * scale, rows[0][1][0].shape[1] * scale
    width = columns * (cell_w + gap) + gap
    title_height = 28 if title else 0
    height = title_height + len(rows) * (label_height + cell_h + gap) + gap
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((gap, 6), title, fill=(0, 0, 0), font=label_font(16))
    y = title_height
    for label, images in rows:
        draw.text((gap, y + 3), label, fill=(20, 20, 20), font=font)
        y += label_height
        for column, image in enumerate(images[:columns]):
            tile = Image.fromarray(to_uint8(image)).resize((cell_w, cell_h), Image.NEAREST)
            canvas.paste(tile, (gap + column * (cell_w + gap), y))
        y += cell_h + gap
    return canvas


def per_image_brightness(images: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Per-image brightness of decoded images (reference/metrics.pixel_brightness) as numpy."""
    return metrics.pixel_brightness(images).numpy()
