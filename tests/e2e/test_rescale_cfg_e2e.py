"""RescaleCFG through the real server on a conditional prompt (positive dark, negative all)."""
from __future__ import annotations

import numpy as np
import pytest
from build_example_workflows import OUT as EXAMPLES_DIR
from demo_images import decode_png, per_image_brightness
from example_graphs import RESCALE_CFG
from pure_core import metrics
from workflow_format import load, ui_to_api

pytestmark = pytest.mark.e2e


def test_rescale_cfg_reduces_over_exposure(client, object_info):
    from zsnr_core.reference import datasets  # the pseudo-package tests/conftest.py installs

    graph = ui_to_api(load(EXAMPLES_DIR / f"{RESCALE_CFG}.json"), object_info)
    graph["6"]["inputs"]["batch_size"] = 32
    entry = client.run(graph, timeout=600)
    images: dict[str, list] = {}
    for node_id, image in client.output_images(entry):
        images.setdefault(node_id, []).append(decode_png(client.view(image)))
    data = datasets.render_dataset("brightness_ramp", 64, 64)
    data_brightness = datasets.mean_brightness(data).numpy()
    dark_mean = float(data_brightness[datasets.subset_masks(data)["dark"].numpy()].mean())
    plain, rescaled = images["11"], images["14"]
    error = {k: abs(float(np.mean(per_image_brightness(v))) - dark_mean) for k, v in (("plain", plain), ("rescaled", rescaled))}
    extreme = {k: metrics.extreme_fraction(per_image_brightness(v), data_brightness) for k, v in (("plain", plain), ("rescaled", rescaled))}
    clipped = {k: metrics.clipped_fraction(v) for k, v in (("plain", plain), ("rescaled", rescaled))}
    print(f"\nCFG 7.5 dark vs all: brightness error {error}, extreme {extreme}, clipped {clipped}")
    # paper §3.4: CFG at zero terminal SNR over-exposes; Algorithm 2 pulls it back
    assert error["rescaled"] < error["plain"]
    assert extreme["rescaled"] < extreme["plain"]
    assert clipped["rescaled"] <= clipped["plain"]
