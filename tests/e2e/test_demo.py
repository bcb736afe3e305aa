"""The demo's conversion and collection code on a short configuration: every output file exists,
images are non-empty, and the report's figures are recomputed from the saved sample mosaics with
reference/metrics.py, the metrics module the benchmarks use too."""
from __future__ import annotations

import json

import numpy as np
import pytest
from demo import run_demo
from demo_images import decode_png
from zsnr_core.reference import datasets, metrics
from zsnr_testlib import TEST_OUTPUT

pytestmark = pytest.mark.e2e
SEEDS = 8


def test_demo_outputs_and_report_are_recomputable():
    output = TEST_OUTPUT / "demo"
    written = run_demo(output, seeds=SEEDS, steps=3, base_directory=TEST_OUTPUT / "hosts" / "demo",
                       inprocess_base=TEST_OUTPUT / "hosts" / "inprocess")  # the host tier's (tests/host/conftest.py)
    for name in ("flawed_vs_fixed.png", "brightness.png", "rescale_cfg.png", "schedule.png", "report.md", "report.json",
                 "trained_pair.png", "trained_colour.png"):
        path = output / name
        assert path in written and path.is_file() and path.stat().st_size > 0, name
    report = json.loads((output / "report.json").read_text())
    columns = report["mosaic_columns"]
    data = datasets.render_dataset("brightness_ramp", 64, 64)
    data_brightness, masks = datasets.mean_brightness(data), datasets.subset_masks(data)
    for config, row in report["rows"].items():
        mosaic = decode_png((output / "samples" / f"{config}.png").read_bytes())
        height = mosaic.shape[0] // ((row["images"] + columns - 1) // columns)
        width = mosaic.shape[1] // columns
        tiles = [mosaic[r * height:(r + 1) * height, c * width:(c + 1) * width]
                 for r, c in (divmod(i, columns) for i in range(row["images"]))]
        assert len(tiles) == SEEDS and all(np.isfinite(t).all() for t in tiles)
        brightness = metrics.pixel_brightness(tiles)
        assert row["r"] == pytest.approx(metrics.spread_ratio(brightness, data_brightness), abs=1e-9)
        assert row["W1"] == pytest.approx(metrics.normalised_wasserstein1(brightness, data_brightness), abs=1e-9)
        assert row["extreme"] == pytest.approx(metrics.extreme_fraction(brightness, data_brightness), abs=1e-9)
        assert row["clipped"] == pytest.approx(metrics.clipped_fraction(tiles), abs=1e-9)
        target = float(data_brightness[masks[row["target subset"]]].mean())
        assert row["brightness error"] == pytest.approx(metrics.brightness_error(brightness, target), abs=1e-9)
        assert np.isfinite([row["r"], row["W1"], row["brightness error"], row["clipped"]]).all()
