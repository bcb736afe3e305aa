"""Built-in image sets for the reference model, generated in code (no files).

Every image is a function of normalised pixel coordinates (u, v) in (0, 1), with its random
parameters drawn once from a seeded torch.Generator independently of the resolution: rendering at
64x64 and at 96x128 gives the "same images" sampled on different grids. Values are in latent space
[-1, 1] (the ChromaRadiance/pixel-space convention latent = 2 * image - 1), layout [N, 3, H, W].
"""
from __future__ import annotations

import math

import torch

DATASETS = ("brightness_ramp", "colour_blobs")
SUBSETS = ("all", "dark", "bright")
DATASET_SIZE = 200

_SEEDS = {"brightness_ramp": 20230501, "colour_blobs": 20230502}
_RAMP_LIMIT = 0.9  # the per-image mean brightness levels span [-0.9, 0.9]
_TEXTURE_AMPLITUDE = 0.08
_TINT_AMPLITUDE = 0.03
_STRIPES, _BLOBS = 3, 2
_MAX_DISCS = 4


def pixel_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates (u along the width, v along the height), float64 [H, W] in (0, 1)."""
    v = (torch.arange(height, dtype=torch.float64) + 0.5) / height
    u = (torch.arange(width, dtype=torch.float64) + 0.5) / width
    grid_v, grid_u = torch.meshgrid(v, u, indexing="ij")
    return grid_u, grid_v


def _uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


def _ramp_parameters(count: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(_SEEDS["brightness_ramp"])
    levels = torch.linspace(-_RAMP_LIMIT, _RAMP_LIMIT, count, dtype=torch.float64)
    tint = _uniform(generator, (count, 3), -1.0, 1.0)
    tint = 0.75 * (tint - tint.mean(dim=1, keepdim=True))  # zero-mean over channels, |tint| <= 1
    return {
        "level": levels[torch.randperm(count, generator=generator)],
        "stripe_angle": _uniform(generator, (count, _STRIPES), 0.0, 2 * math.pi),
        "stripe_frequency": _uniform(generator, (count, _STRIPES), 1.0, 6.0),
        "stripe_phase": _uniform(generator, (count, _STRIPES), 0.0, 2 * math.pi),
        "stripe_weight": _uniform(generator, (count, _STRIPES), 0.5, 1.0),
        "blob_centre": _uniform(generator, (count, _BLOBS, 2), 0.15, 0.85),
        "blob_width": _uniform(generator, (count, _BLOBS), 0.08, 0.25),
        "blob_weight": _uniform(generator, (count, _BLOBS), -1.0, 1.0),
        "tint": tint,
    }


def _ramp_texture(params: dict[str, torch.Tensor], index: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Smooth stripes and blobs with |texture| <= 1 by construction (weights normalised by their sum)."""
    texture = torch.zeros_like(u)
    for k in range(_STRIPES):
        angle = params["stripe_angle"][index, k]
        along = u * torch.cos(angle) + v * torch.sin(angle)
        phase = 2 * math.pi * params["stripe_frequency"][index, k] * along + params["stripe_phase"][index, k]
        texture += params["stripe_weight"][index, k] * torch.cos(phase)
    for k in range(_BLOBS):
        centre_u, centre_v = params["blob_centre"][index, k]
        squared = (u - centre_u) ** 2 + (v - centre_v) ** 2
        texture += params["blob_weight"][index, k] * torch.exp(-squared / (2 * params["blob_width"][index, k] ** 2))
    bound = params["stripe_weight"][index].sum() + params["blob_weight"][index].abs().sum()
    return texture / bound


def render_brightness_ramp(height: int, width: int, count: int = DATASET_SIZE) -> torch.Tensor:
    """Images whose mean brightness is exactly linspace(-0.9, 0.9, count) in a fixed shuffled order.

    The texture and the tint are made zero-mean on the rendered grid, so each image's mean over
    pixels and channels equals its level. They are scaled down where the level leaves less than
    their worst-case excursion of headroom (a bound that does not depend on the resolution), so
    every value stays inside [-1, 1] without clipping (clipping would move the mean).
    """
    params = _ramp_parameters(count)
    u, v = pixel_grid(height, width)
    excursion_bound = 2 * _TEXTURE_AMPLITUDE + _TINT_AMPLITUDE  # |t - mean(t)| <= 2 max|t|
    images = torch.empty((count, 3, height, width), dtype=torch.float64)
    for index in range(count):
        level = params["level"][index]
        texture = _ramp_texture(params, index, u, v)
        deviation = _TEXTURE_AMPLITUDE * (texture - texture.mean())
        deviation = deviation + _TINT_AMPLITUDE * params["tint"][index].view(3, 1, 1)
        headroom_scale = min(1.0, float((1 - level.abs()) / excursion_bound))
        images[index] = level + headroom_scale * deviation
    return images.float()


def _blob_parameters(count: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(_SEEDS["colour_blobs"])
    return {
        "background": _uniform(generator, (count, 3), -0.8, 0.8),
        "disc_count": torch.randint(2, _MAX_DISCS + 1, (count,), generator=generator),
        "disc_centre": _uniform(generator, (count, _MAX_DISCS, 2), 0.1, 0.9),
        "disc_radius": _uniform(generator, (count, _MAX_DISCS), 0.08, 0.3),
        "disc_colour": _uniform(generator, (count, _MAX_DISCS, 3), -1.0, 1.0),
    }


def render_colour_blobs(height: int, width: int, count: int = DATASET_SIZE) -> torch.Tensor:
    """A few soft coloured discs composited over a coloured background (convex blends stay in [-1, 1])."""
    params = _blob_parameters(count)
    u, v = pixel_grid(height, width)
    softness = 0.02  # edge width in normalised coordinates, so edges look alike at every size
    images = torch.empty((count, 3, height, width), dtype=torch.float64)
    for index in range(count):
        image = params["background"][index].view(3, 1, 1).expand(3, height, width).clone()
        for k in range(int(params["disc_count"][index])):
            centre_u, centre_v = params["disc_centre"][index, k]
            distance = ((u - centre_u) ** 2 + (v - centre_v) ** 2).sqrt()
            coverage = torch.sigmoid((params["disc_radius"][index, k] - distance) / softness)
            image = image * (1 - coverage) + params["disc_colour"][index, k].view(3, 1, 1) * coverage
        images[index] = image
    return images.float()


_RENDERERS = {"brightness_ramp": render_brightness_ramp, "colour_blobs": render_colour_blobs}


def render_dataset(name: str, height: int, width: int) -> torch.Tensor:
    """A built-in dataset rendered at height x width: float32 [N, 3, H, W] in [-1, 1]."""
    if name not in _RENDERERS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"dataset size must be positive integers, got {height}x{width}")
    return _RENDERERS[name](int(height), int(width))


def mean_brightness(images: torch.Tensor) -> torch.Tensor:
    """Per-image mean over all pixels and channels, float64 [N]."""
    return images.to(torch.float64).flatten(1).mean(dim=1)


def subset_masks(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean masks [N] for SUBSETS: "dark" is the half of the images below the median brightness,
    "bright" the rest.

    Split by rank (a stable sort) rather than by comparing with a median value, so that for even N
    each half holds exactly N/2 images even when brightness values tie.
    """
    brightness = mean_brightness(images)
    count = brightness.shape[0]
    order = torch.sort(brightness, stable=True).indices
    dark = torch.zeros(count, dtype=torch.bool)
    dark[order[: count // 2]] = True
    return {"all": torch.ones(count, dtype=torch.bool), "dark": dark, "bright": ~dark}
