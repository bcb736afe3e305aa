"""The training set of the trained reference pair (docs/trained_reference_pair.md): procedural
32x32 RGB images with structure and a brightness spread over nearly the whole range [-1, 1].

Each image is a per-image brightness level (uniform in [-LEVEL_LIMIT, LEVEL_LIMIT]) plus a
zero-mean structure: a linear gradient at a random angle and one to three soft-edged discs or
squares of random contrast and slight colour. The structure is scaled down where the level
leaves less headroom than its largest excursion, so every value stays inside [-1, 1] without
clipping and each image's mean over pixels and channels is exactly its level (the brightness
Lin et al. 2023 §3 Fig. 1 is about: a flawed schedule cannot reach the ends of this range).

Classes (the class-conditioning input of the trained UNet): 1 = dark (level < 0), 2 = bright
(level >= 0); index 0 is reserved for the unconditional "null" class of classifier-free guidance,
in the order of reference/datasets.SUBSETS ("all", "dark", "bright"), so the pack's Reference
Condition node selects the same classes. Pure torch, no host imports (tests/unit/test_purity.py).
"""
from __future__ import annotations

import math

import torch

from .datasets import SUBSETS, pixel_grid

CLASS_NAMES = SUBSETS  # index 0 "all" is the null (unconditional) class
NULL_CLASS, DARK_CLASS, BRIGHT_CLASS = 0, 1, 2
LEVEL_LIMIT = 0.92
MAX_SHAPES = 3
DEFAULT_SIZE = 32
DEFAULT_SEED = 20231001
DEFAULT_TRAINING_COUNT = 4096  # the training set of tools/train_reference_unet.py (and the benchmark's data)


def uniform_draw(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    """float64 values uniform in [low, high) of the given shape, from generator."""
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


def render_shapes(count: int, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> torch.Tensor:
    """`count` images, float32 [count, 3, size, size] in [-1, 1], a deterministic function of
    (count, size, seed); vectorised over the images."""
    if int(count) != count or count < 1 or int(size) != size or size < 4:
        raise ValueError(f"render_shapes needs count >= 1 and size >= 4 integers, got {count!r}, {size!r}")
    count, size = int(count), int(size)
    generator = torch.Generator().manual_seed(int(seed))
    u, v = pixel_grid(size, size)  # [H, W] in (0, 1)
    u, v = u.expand(count, size, size), v.expand(count, size, size)
    level = uniform_draw(generator, (count,), -LEVEL_LIMIT, LEVEL_LIMIT)

    angle = uniform_draw(generator, (count, 1, 1), 0.0, 2 * math.pi)
    gradient = uniform_draw(generator, (count, 1, 1), 0.1, 0.5) * ((u - 0.5) * torch.cos(angle) + (v - 0.5) * torch.sin(angle))
    structure = gradient.unsqueeze(1).expand(count, 3, size, size).clone()

    shapes = torch.randint(1, MAX_SHAPES + 1, (count,), generator=generator)
    for k in range(MAX_SHAPES):
        present = (shapes > k).to(torch.float64).view(count, 1, 1, 1)
        coverage = soft_shape_coverage(generator, u, v, (0.08, 0.28))
        contrast = uniform_draw(generator, (count, 1, 1, 1), -0.7, 0.7)
        colour = contrast + uniform_draw(generator, (count, 3, 1, 1), -0.15, 0.15)
        structure = structure + present * colour * coverage.unsqueeze(1)

    return fit_to_headroom(level, structure)


def soft_shape_coverage(generator: torch.Generator, u: torch.Tensor, v: torch.Tensor,
                        radius_range: tuple[float, float]) -> torch.Tensor:
    """[count, H, W] coverage in (0, 1) of one soft-edged disc or square per image (centre in
    [0.2, 0.8]², radius in radius_range, edge 2 % of the width), drawn from `generator`."""
    count = u.shape[0]
    centre = uniform_draw(generator, (count, 2, 1, 1), 0.2, 0.8)
    radius = uniform_draw(generator, (count, 1, 1), *radius_range)
    square = torch.rand((count, 1, 1), generator=generator) < 0.5
    du, dv = (u - centre[:, 0]).abs(), (v - centre[:, 1]).abs()
    distance = torch.where(square, torch.maximum(du, dv), (du**2 + dv**2).sqrt())
    return torch.sigmoid((radius - distance) / 0.02)


def fit_to_headroom(level: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
    """level [N] + the zero-mean part of structure [N, 3, H, W], scaled down where the level leaves
    less headroom than its largest excursion: values in [-1, 1], each image's mean exactly its level."""
    structure = structure - structure.mean(dim=(1, 2, 3), keepdim=True)
    excursion = structure.flatten(1).abs().amax(dim=1).clamp(min=1e-12)
    scale = torch.clamp((1 - level.abs()) / excursion, max=1.0).view(-1, 1, 1, 1)
    return (level.view(-1, 1, 1, 1) + scale * structure).clamp(-1.0, 1.0).float()


def class_labels(images: torch.Tensor) -> torch.Tensor:
    """Class index per image (int64 [N]): DARK_CLASS below mean brightness 0, else BRIGHT_CLASS."""
    brightness = images.to(torch.float64).flatten(1).mean(dim=1)
    return torch.where(brightness < 0, DARK_CLASS, BRIGHT_CLASS).to(torch.int64)
