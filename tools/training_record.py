"""The training record of the colour networks (docs/trained_colour_networks.md): the loss every 100
steps, read from the logs tools/train_reference_unet.py writes, as a table and as one loss-curve
panel per recipe (each on its own log axis: the recipes' losses have different targets).

    python3 tools/bootstrap.py run tools/training_record.py benchmarks/results/trained_colour/colour_*.log --chart docs/trained_colour_loss.png
"""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from charts import label_font
from PIL import Image, ImageDraw

LINE = re.compile(r"^\[(?P<recipe>[\w]+)\] step (?P<step>\d+)/\d+ loss (?P<loss>[\d.]+) (?P<seconds>\d+)s$")
PANEL_W, PANEL_H, MARGIN = 300, 220, 52


def read_log(path: Path) -> tuple[str, list[tuple[int, float, int]]]:
    """(recipe, [(step, mean loss of the last 100 steps, seconds)]) of one training log."""
    rows, recipe = [], None
    for line in Path(path).read_text().splitlines():
        match = LINE.match(line.strip())
        if match:
            recipe = match["recipe"]
            rows.append((int(match["step"]), float(match["loss"]), int(match["seconds"])))
    if not rows:
        raise SystemExit(f"{path}: no '[recipe] step N/M loss L Ss' lines (not a tools/train_reference_unet.py log)")
    return recipe, rows


def table(curves: dict[str, list], every: int = 200) -> str:
    steps = [step for step, _, _ in next(iter(curves.values())) if step % every == 0]
    lines = ["| step | " + " | ".join(str(step) for step in steps) + " |", "|---" * (len(steps) + 1) + "|"]
    for recipe, rows in curves.items():
        loss = {step: value for step, value, _ in rows}
        lines.append(f"| {recipe} | " + " | ".join(f"{loss[step]:.4f}" if step in loss else "—" for step in steps) + " |")
    return "\n".join(lines)


def chart(curves: dict[str, list]) -> Image.Image:
    font = label_font(12)
    canvas = Image.new("RGB", (len(curves) * (PANEL_W + MARGIN) + MARGIN, PANEL_H + 2 * MARGIN), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (recipe, rows) in enumerate(curves.items()):
        left, top = MARGIN + index * (PANEL_W + MARGIN), MARGIN
        steps, losses = [row[0] for row in rows], [row[1] for row in rows]
        low, high = math.log10(min(losses)) - 0.05, math.log10(max(losses)) + 0.05
        draw.rectangle([left, top, left + PANEL_W, top + PANEL_H], outline="black")
        draw.text((left, top - 18), f"{recipe}: training loss (log)", fill="black", font=font)
        for value in (min(losses), max(losses)):
            y = top + PANEL_H - (math.log10(value) - low) / (high - low) * PANEL_H
            draw.text((left - 48, y - 6), f"{value:.4f}", fill="black", font=font)
        draw.text((left + PANEL_W - 40, top + PANEL_H + 4), f"{steps[-1]}", fill="black", font=font)
        draw.text((left, top + PANEL_H + 4), "step", fill="black", font=font)
        points = [(left + step / steps[-1] * PANEL_W, top + PANEL_H - (math.log10(loss) - low) / (high - low) * PANEL_H)
                  for step, loss in zip(steps, losses, strict=True)]
        draw.line(points, fill="#1f77b4", width=2)
    return canvas


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", type=Path)
    parser.add_argument("--chart", type=Path, help="write the loss-curve chart here (PNG)")
    args = parser.parse_args(argv)
    curves = dict(read_log(path) for path in args.logs)
    print(table(curves))
    for recipe, rows in curves.items():
        print(f"{recipe}: {rows[-1][0]} steps in {rows[-1][2]} s; mean loss of the last 300 steps "
              f"{sum(loss for _, loss, _ in rows[-3:]) / 3:.4f}")
    if args.chart:
        chart(curves).save(args.chart)
        print(f"wrote {args.chart}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
