"""The colour networks' training set (reference/colour_shapes.py), pure torch."""
from __future__ import annotations

import math

import pytest
import torch
from zsnr_core.reference import colour_shapes


@pytest.fixture(scope="module")
def rendered():
    return colour_shapes.render_colour_shapes(512, seed=7)


def test_deterministic_and_seeded(rendered):
    images, labels = colour_shapes.render_colour_shapes(512, seed=7)
    assert torch.equal(images, rendered[0]) and torch.equal(labels, rendered[1])
    assert not torch.equal(colour_shapes.render_colour_shapes(512, seed=8)[0], images)


def test_values_in_range_and_each_mean_is_a_level_within_the_limit(rendered):
    images, labels = rendered
    assert images.shape == (512, 3, 32, 32) and images.dtype == torch.float32
    assert float(images.min()) >= -1 and float(images.max()) <= 1
    brightness = images.double().flatten(1).mean(dim=1)
    assert float(brightness.abs().max()) <= colour_shapes.LEVEL_LIMIT + 1e-6
    # uniform levels over [-0.85, 0.85]: the standard deviation is 0.85 / sqrt(3) = 0.49
    assert float(brightness.std()) == pytest.approx(colour_shapes.LEVEL_LIMIT / math.sqrt(3), rel=0.1)
    assert set(labels.tolist()) == set(range(1, len(colour_shapes.CLASS_NAMES)))


@pytest.mark.parametrize("degrees", [0, 60, 120, 180, 240, 300, 17, -33])
def test_chroma_vector_keeps_brightness_and_mean_hue_inverts_it(degrees):
    hue = torch.tensor([math.radians(degrees)], dtype=torch.float64)
    offset = colour_shapes.chroma_vector(hue, torch.tensor([0.6], dtype=torch.float64))
    assert float(offset.sum()) == pytest.approx(0.0, abs=1e-12)  # a colour never changes the brightness
    image = (0.1 + offset).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    found_hue, amplitude = colour_shapes.mean_hue(image)
    assert math.remainder(float(found_hue) - float(hue), 2 * math.pi) == pytest.approx(0.0, abs=1e-9)
    assert float(amplitude) == pytest.approx(0.6, rel=1e-9)


def test_primary_hues_are_the_primaries():
    red, green, blue = (colour_shapes.chroma_vector(torch.tensor([math.radians(d)], dtype=torch.float64),
                                                    torch.tensor([1.0], dtype=torch.float64))[0] for d in (0, 120, 240))
    assert int(red.argmax()) == 0 and int(green.argmax()) == 1 and int(blue.argmax()) == 2


def test_the_hue_of_the_mean_colour_recovers_the_class(rendered):
    """The background covers most of each image and shapes are of any hue, so the class read back
    from the mean colour is right for nearly every image (the class-separation figure's ceiling)."""
    images, labels = rendered
    assert float((colour_shapes.hue_class(images) == labels).double().mean()) > 0.95


def test_the_data_is_colourful_where_the_headroom_allows(rendered):
    images, _ = rendered
    _, amplitude = colour_shapes.mean_hue(images)
    mid = images.double().flatten(1).mean(dim=1).abs() < 0.3
    assert float(amplitude[mid].mean()) > 0.3  # saturated hues in the mid-tones
    assert float(amplitude[~mid].mean()) < float(amplitude[mid].mean())  # fading towards black and white


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="count >= 1 and size >= 4"):
        colour_shapes.render_colour_shapes(0)
    with pytest.raises(ValueError, match="count >= 1 and size >= 4"):
        colour_shapes.render_colour_shapes(4, size=2)
