"""The dev tooling's charts, drawn with Pillow (the host brings Pillow, not matplotlib): the label
font, the demo's brightness histogram, and the benchmark's log-log plots (W1 against NFE, one
panel per sampler, one line per configuration, the seed count's noise floor as a band; W1 against
image size). The Schedule Plot node draws its own chart (nodes/schedule_plot.py): the pack cannot
import the dev tooling at run time."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def label_font(size: int = 14):
    """DejaVu Sans where the system has it (Debian, the host's wheels), else Pillow's bitmap font."""
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


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


PANEL_W, PANEL_H, MARGIN = 330, 250, 44
PALETTE = ["#d62728", "#ff7f0e", "#8c564b", "#9467bd", "#e377c2", "#1f77b4", "#17becf", "#2ca02c",
           "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#843c39", "#7b4173", "#000000"]
Y_RANGE = (0.02, 3.0)


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    fraction = (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return start + fraction * (end - start)


def _panel(draw, origin, sampler, lines, colours, x_range, floor, font):
    left, top = origin[0] + MARGIN, origin[1] + 22
    right, bottom = origin[0] + PANEL_W - 8, origin[1] + PANEL_H - 26

    def x_of(nfe):
        return _scale(nfe, *x_range, left, right)

    def y_of(w1):
        return _scale(min(max(w1, Y_RANGE[0]), Y_RANGE[1]), *Y_RANGE, bottom, top)

    draw.text((left, origin[1] + 4), sampler, fill="black", font=font)
    draw.rectangle([left, y_of(1.5 * floor["w1"]), right, bottom], fill="#eeeeee")
    draw.line([left, y_of(floor["w1"]), right, y_of(floor["w1"])], fill="#999999", width=1)
    draw.rectangle([left, top, right, bottom], outline="black")
    for tick in (0.05, 0.1, 0.2, 0.5, 1.0, 2.0):
        y = y_of(tick)
        draw.line([left - 3, y, left, y], fill="black")
        draw.text((origin[0] + 4, y - 7), f"{tick:g}", fill="black", font=font)
    for tick in (2, 5, 10, 25, 50, 100, 200):
        if x_range[0] <= tick <= x_range[1]:
            x = x_of(tick)
            draw.line([x, bottom, x, bottom + 3], fill="black")
            draw.text((x - 6, bottom + 5), str(tick), fill="black", font=font)
    for config, points in lines.items():
        finite = sorted((nfe, w1) for nfe, w1 in points if math.isfinite(w1) and nfe > 0)
        xy = [(x_of(nfe), y_of(w1)) for nfe, w1 in finite]
        if len(xy) > 1:
            draw.line(xy, fill=colours[config], width=2)
        for x, y in xy:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=colours[config])


def w1_against_nfe(result: dict, columns: int = 3) -> Image.Image:
    """One panel per sampler: W1/std(data) against NFE (log-log) per configuration; grey band
    below 1.5 x the floor (goal 1), a line at the mean floor."""
    records = result["records"]
    samplers = list(dict.fromkeys(record["sampler"] for record in records))
    configs = list(dict.fromkeys(record["config"] for record in records))
    colours = {config: PALETTE[index % len(PALETTE)] for index, config in enumerate(configs)}
    nfes = [record["nfe"] for record in records if record["nfe"] > 0] or [1, 100]
    x_range = (max(1, min(nfes) / 1.3), max(nfes) * 1.3)
    rows = math.ceil(len(samplers) / columns)
    legend_h = 18 * math.ceil(len(configs) / 3) + 40
    image = Image.new("RGB", (columns * PANEL_W, rows * PANEL_H + legend_h), "white")
    draw = ImageDraw.Draw(image)
    font = label_font(11)
    for index, sampler in enumerate(samplers):
        lines = {}
        for record in records:
            if record["sampler"] == sampler:
                lines.setdefault(record["config"], []).append((record["nfe"], record["w1"]))
        origin = ((index % columns) * PANEL_W, (index // columns) * PANEL_H)
        _panel(draw, origin, sampler, lines, colours, x_range, result["floor"], font)
    y = rows * PANEL_H + 6
    draw.text((6, y), f"W1/std(data) against NFE; {result.get('batches', 1)} x {result['seeds']} seeds, {result['size']}x{result['size']}; "
                      f"grey line: noise floor {result['floor']['w1']:.3f}, band up to 1.5 x floor",
              fill="black", font=label_font(12))
    for index, config in enumerate(configs):
        x, row = 6 + (index % 3) * (columns * PANEL_W // 3), y + 22 + 18 * (index // 3)
        draw.line([x, row + 7, x + 24, row + 7], fill=colours[config], width=3)
        draw.text((x + 30, row), config, fill="black", font=font)
    return image


def w1_against_size(result: dict, columns: int = 3) -> Image.Image:
    """One panel per sampler and step count: W1/std(data) against the image side (log-log), one
    line per configuration; grey band below 1.5 x each size's floor (goal 1), a dot per floor."""
    records = result["records"]
    sizes = sorted({record["size"] for record in records})
    panels = list(dict.fromkeys((record["sampler"], record.get("column", f"S={record['steps']}"))
                                for record in records))
    configs = list(dict.fromkeys(record["config"] for record in records))
    colours = {config: PALETTE[index % len(PALETTE)] for index, config in enumerate(configs)}
    x_range = (min(sizes) / 1.4, max(sizes) * 1.4)
    rows = math.ceil(len(panels) / columns)
    legend_h = 18 * math.ceil(len(configs) / 3) + 40
    image = Image.new("RGB", (columns * PANEL_W, rows * PANEL_H + legend_h), "white")
    draw = ImageDraw.Draw(image)
    font = label_font(11)
    for index, (sampler, column) in enumerate(panels):
        origin = ((index % columns) * PANEL_W, (index // columns) * PANEL_H)
        left, top = origin[0] + MARGIN, origin[1] + 22
        right, bottom = origin[0] + PANEL_W - 8, origin[1] + PANEL_H - 26

        def x_of(size, left=left, right=right):
            return _scale(size, *x_range, left, right)

        def y_of(w1, top=top, bottom=bottom):
            return _scale(min(max(w1, Y_RANGE[0]), Y_RANGE[1]), *Y_RANGE, bottom, top)

        draw.text((left, origin[1] + 4), f"{sampler}, {column}", fill="black", font=font)
        band = [(x_of(size), y_of(1.5 * result["floors"][str(size)]["w1"])) for size in sizes]
        draw.polygon([(left, band[0][1])] + band + [(right, band[-1][1]), (right, bottom), (left, bottom)],
                     fill="#eeeeee")
        draw.rectangle([left, top, right, bottom], outline="black")
        for tick in (0.05, 0.1, 0.2, 0.5, 1.0, 2.0):
            y = y_of(tick)
            draw.line([left - 3, y, left, y], fill="black")
            draw.text((origin[0] + 4, y - 7), f"{tick:g}", fill="black", font=font)
        for size in sizes:
            x = x_of(size)
            draw.line([x, bottom, x, bottom + 3], fill="black")
            draw.text((x - 8, bottom + 5), f"{size}²", fill="black", font=font)
            floor_y = y_of(result["floors"][str(size)]["w1"])
            draw.ellipse([x - 2, floor_y - 2, x + 2, floor_y + 2], fill="#999999")
        for config in configs:
            points = sorted((record["size"], record["w1"]) for record in records
                            if record["config"] == config and record["sampler"] == sampler
                            and record.get("column", f"S={record['steps']}") == column and math.isfinite(record["w1"]))
            xy = [(x_of(size), y_of(w1)) for size, w1 in points]
            if len(xy) > 1:
                draw.line(xy, fill=colours[config], width=2)
            for x, y in xy:
                draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=colours[config])
    y = rows * PANEL_H + 6
    draw.text((6, y), f"W1/std(data) against image size; {result.get('batches', 1)} x {result['seeds']} seeds per "
                      "point; grey dots: noise floor per size, band up to 1.5 x floor", fill="black", font=label_font(12))
    for index, config in enumerate(configs):
        x, row = 6 + (index % 3) * (columns * PANEL_W // 3), y + 22 + 18 * (index // 3)
        draw.line([x, row + 7, x + 24, row + 7], fill=colours[config], width=3)
        draw.text((x + 30, row), config, fill="black", font=font)
    return image
