"""The demo's figures per configuration, computed from the sampled images only (and the data).

Every figure is one of reference/metrics.py (its docstring defines them); this module only picks
them for a configuration's decoded images and lays out the report table."""
from __future__ import annotations

import numpy as np
from pure_core import metrics

COLUMNS = ("configuration", "images", "r", "W1", "brightness error", "extreme", "clipped", "NaN", "seconds")


def figures(images: list[np.ndarray], data_brightness, seconds: float, target_mean: float | None = None) -> dict:
    """r, W1 (over the data's std), brightness error against `target_mean` (default: the data's
    mean), extreme and clipped fractions, NaN count; NaN pixels are scored as 0."""
    nan_count = int(sum(int(np.isnan(image).sum()) for image in images))
    finite = [np.nan_to_num(image) for image in images]
    brightness = metrics.pixel_brightness(finite)
    target = float(np.mean(data_brightness)) if target_mean is None else target_mean
    return {
        "images": len(images),
        "r": metrics.spread_ratio(brightness, data_brightness),
        "W1": metrics.normalised_wasserstein1(brightness, data_brightness),
        "brightness error": metrics.brightness_error(brightness, target),
        "extreme": metrics.extreme_fraction(brightness, data_brightness),
        "clipped": metrics.clipped_fraction(finite),
        "NaN": nan_count,
        "seconds": seconds,
    }


def markdown_table(rows: dict[str, dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, row in rows.items():
        cells = [name, str(row["images"]), f"{row['r']:.2f}", f"{row['W1']:.2f}", f"{row['brightness error']:.3f}", f"{row['extreme']:.2f}",
                 f"{row['clipped']:.4f}", str(row["NaN"]), f"{row['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
