"""The training set of the colour networks (docs/trained_colour_networks.md): procedural 32x32 RGB
images whose classes are hues, with saturated colour and the whole dark-bright range, so that
over-exposure and over-saturation (Lin et al. 2023 §3.4, Fig. 6) can be measured.

Each image is a per-image brightness level (uniform in [-LEVEL_LIMIT, LEVEL_LIMIT]) plus a
structure of zero mean over pixels and channels: a background colour of the class's hue (the hue
jittered by up to HUE_JITTER), a luminance gradient, and one to three soft discs or squares of any
hue. A colour is a chroma vector a·(cos h, cos(h − 120°), cos(h + 120°)): its three channels sum to
zero, so it changes hue and saturation and never the brightness. The structure is scaled down where
the level leaves less headroom than its largest excursion, so values stay in [-1, 1] without
clipping and each image's mean is exactly its level (colours fade to grey near black and white, as
paint does).

Classes: 0 = the null (unconditional) class of classifier-free guidance, then the six hues of
HUE_NAMES (red at 0°, yellow 60°, green 120°, cyan 180°, blue 240°, magenta 300°). The class of a
generated image is read back by `hue_class` (nearest class hue of its mean chroma), the
class-separation figure of benchmarks/trained_colour.py. Pure torch, no host imports.
"""
from __future__ import annotations

import math

import torch

from .datasets import pixel_grid
from .procedural_shapes import fit_to_headroom, soft_shape_coverage, uniform_draw

HUE_NAMES = ("red", "yellow", "green", "cyan", "blue", "magenta")
CLASS_NAMES = ("none", *HUE_NAMES)
NULL_CLASS = 0
LEVEL_LIMIT = 0.85
HUE_JITTER = math.radians(20.0)
MAX_SHAPES = 3
DEFAULT_SIZE = 32
DEFAULT_SEED = 20261206
DEFAULT_TRAINING_COUNT = 8192


def chroma_vector(hue: torch.Tensor, amplitude: torch.Tensor) -> torch.Tensor:
    """[..., 3] RGB offsets of zero channel sum for hues in radians (0 = red, 2π/3 = green)."""
    phases = torch.tensor([0.0, -2 * math.pi / 3, 2 * math.pi / 3], dtype=torch.float64)
    return amplitude.unsqueeze(-1) * torch.cos(hue.unsqueeze(-1) + phases)


def render_colour_shapes(count: int, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(images float32 [count, 3, size, size] in [-1, 1], class labels int64 [count] in 1..6), a
    deterministic function of (count, size, seed); vectorised over the images."""
    if int(count) != count or count < 1 or int(size) != size or size < 4:
        raise ValueError(f"render_colour_shapes needs count >= 1 and size >= 4 integers, got {count!r}, {size!r}")
    count, size = int(count), int(size)
    generator = torch.Generator().manual_seed(int(seed))
    u, v = pixel_grid(size, size)
    u, v = u.expand(count, size, size), v.expand(count, size, size)
    level = uniform_draw(generator, (count,), -LEVEL_LIMIT, LEVEL_LIMIT)
    hue_index = torch.randint(0, len(HUE_NAMES), (count,), generator=generator)
    hue = hue_index.double() * (2 * math.pi / len(HUE_NAMES)) + uniform_draw(generator, (count,), -HUE_JITTER, HUE_JITTER)
    background = chroma_vector(hue, uniform_draw(generator, (count,), 0.35, 0.9))  # [count, 3]

    angle = uniform_draw(generator, (count, 1, 1), 0.0, 2 * math.pi)
    gradient = uniform_draw(generator, (count, 1, 1), 0.0, 0.4) * ((u - 0.5) * torch.cos(angle) + (v - 0.5) * torch.sin(angle))
    structure = background.view(count, 3, 1, 1) + gradient.unsqueeze(1)

    shapes = torch.randint(1, MAX_SHAPES + 1, (count,), generator=generator)
    for k in range(MAX_SHAPES):
        present = (shapes > k).to(torch.float64).view(count, 1, 1, 1)
        coverage = soft_shape_coverage(generator, u, v, (0.07, 0.2)).unsqueeze(1)
        shape_colour = chroma_vector(uniform_draw(generator, (count,), 0.0, 2 * math.pi), uniform_draw(generator, (count,), 0.0, 0.8))
        luminance = uniform_draw(generator, (count, 1), -0.5, 0.5)
        # a shape replaces the background colour under it (paint over paint), then adds its own
        paint = (shape_colour + luminance - background).view(count, 3, 1, 1)
        structure = structure + present * coverage * paint

    return fit_to_headroom(level, structure), hue_index + 1


def mean_hue(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(hue in radians [N], chroma amplitude [N]) of each image's mean colour (the inverse of
    chroma_vector: R − (G+B)/2 and (√3/2)(G − B) are the two axes of the chroma plane)."""
    mean = images.double().mean(dim=(2, 3))
    r, g, b = mean.unbind(dim=1)
    x, y = r - (g + b) / 2, (math.sqrt(3) / 2) * (g - b)
    return torch.atan2(y, x), (x**2 + y**2).sqrt() / 1.5


def hue_class(images: torch.Tensor) -> torch.Tensor:
    """Class index (1..6) of each image: the class hue nearest its mean colour's hue."""
    hue, _ = mean_hue(images)
    sector = 2 * math.pi / len(HUE_NAMES)
    return torch.remainder(torch.round(hue / sector), len(HUE_NAMES)).long() + 1
