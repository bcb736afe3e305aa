"""The demo's figures per configuration, computed from the sampled images only (and the data)."""
from __future__ import annotations

import numpy as np
from demo_images import clipped_fraction, per_image_brightness, spread_ratio, wasserstein1

COLUMNS = ("configuration", "images", "r", "W1", "brightness error", "extreme", "clipped", "NaN", "seconds")


def extreme_fraction(brightness: np.ndarray, data_brightness: np.ndarray, tail: float = 0.025) -> float:
    """Fraction of samples beyond the data's 2.5 % / 97.5 % brightness quantiles: pushed to the end
    of the range. The memorising reference model can only return values inside its images' range,
    so over-exposure shows here (and in the brightness error), not as clipped pixels."""
    low, high = np.quantile(data_brightness, [tail, 1 - tail])
    return float(np.mean((brightness < low) | (brightness > high)))


def figures(images: list[np.ndarray], data_brightness: np.ndarray, seconds: float,
            target_mean: float | None = None) -> dict:
    """r, W1 (over the data's std), |mean brightness - target|, clipped-pixel fraction, NaN count."""
    nan_count = int(sum(int(np.isnan(image).sum()) for image in images))
    finite = [np.nan_to_num(image) for image in images]
    brightness = per_image_brightness(finite)
    target = float(np.mean(data_brightness)) if target_mean is None else target_mean
    return {
        "images": len(images),
        "r": spread_ratio(brightness, data_brightness),
        "W1": wasserstein1(brightness, data_brightness) / float(np.std(data_brightness)),
        "brightness error": abs(float(np.mean(brightness)) - target),
        "extreme": extreme_fraction(brightness, data_brightness),
        "clipped": clipped_fraction(finite),
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
