"""Image helpers for the demo: decode /view PNGs, labelled grids, the brightness histogram.

The figures computed from the images are defined in reference/metrics.py, the one metrics module;
per_image_brightness below only returns its brightness of decoded images as numpy."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pure_core import metrics


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes → float64 array [H, W, 3] in 0..1."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def label_font(size: int = 14):
    """DejaVu Sans where the system has it (Debian, the host's wheels), else Pillow's bitmap font."""
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


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


def histogram_chart(series: list[tuple[str, np.ndarray, tuple[int, int, int]]], bins: int = 24,
                    value_range=(-1.0, 1.0), title: str = "", width: int = 720, height: int = 360) -> Image.Image:
    """Overlaid outline histograms (density) of several 1-D samples, with legend and axis labels."""
    font = label_font(13)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    left, right, top, bottom = 60, width - 20, 40, height - 50
    edges = np.linspace(value_range[0], value_range[1], bins + 1)
    densities = [np.histogram(np.clip(values, *value_range), bins=edges, density=True)[0] for _, values, _ in series]
    peak = max(float(d.max()) for d in densities) or 1.0
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    for tick in np.linspace(value_range[0], value_range[1], 5):
        x = left + (tick - value_range[0]) / (value_range[1] - value_range[0]) * (right - left)
        draw.line([x, bottom, x, bottom + 4], fill=(0, 0, 0))
        draw.text((x - 12, bottom + 6), f"{tick:+.1f}", fill=(0, 0, 0), font=font)
    draw.text(((left + right) // 2 - 120, bottom + 24), "per-image mean brightness (latent scale)", fill=(0, 0, 0), font=font)
    draw.text((8, top - 4), "density", fill=(0, 0, 0), font=font)
    if title:
        draw.text((left, 10), title, fill=(0, 0, 0), font=label_font(15))
    for index, ((label, _, colour), density) in enumerate(zip(series, densities, strict=True)):
        points = []
        for b in range(bins):
            x0 = left + b / bins * (right - left)
            x1 = left + (b + 1) / bins * (right - left)
            y = bottom - density[b] / peak * (bottom - top - 10)
            points += [(x0, y), (x1, y)]
        draw.line([(left, bottom)] + points + [(right, bottom)], fill=colour, width=3)
        draw.rectangle([right - 210, top + 8 + 18 * index, right - 196, top + 20 + 18 * index], fill=colour)
        draw.text((right - 190, top + 6 + 18 * index), label, fill=(0, 0, 0), font=font)
    return canvas
