"""Ours against the host's own zsnr clamp, per sampler × spacing × steps: the first-step table.

Reads JSONs written by quality_per_nfe.py with the configs host_zsnr/<spacing> and ours/<spacing>
(same seeds, same size; benchmarks/README.md has the commands) and prints one markdown table,
W1 and r of each pair, and the cells where ours is worse than the host beyond sampling noise.

Noise band: a sampler that draws exactly from the data scores W1 between its mean (the floor) and
its 95th percentile w1_q95 (reference/metrics.py noise_floor) from sampling noise alone, so a
difference of W1 within w1_q95 - floor at the run's seed count is not a difference. The pairs share
seeds and noise, so for samplers the pack leaves to the host the two figures agree far inside it.

  .venv/bin/python benchmarks/first_step_table.py benchmarks/results/first_step_64.json \
      benchmarks/results/first_step_64_s32.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def pairs(results: list[dict]):
    """{(sampler, spacing, steps): (host record, ours record, band)} over every result file."""
    found, by_key, bands = {}, {}, {}
    for result in results:  # records of the same seed count and size pair up across files
        for size, floor in result["floors"].items():
            bands[(result["seeds"], size)] = floor["w1_q95"] - floor["w1"]
            for r in result["records"]:
                if str(r["size"]) == size:
                    by_key[(result["seeds"], size, r["kind"], r["sampler"], r["scheduler"], r["steps"])] = r
    for (seeds, size, kind, sampler, spacing, steps), host in by_key.items():  # rows in the host's sampler order
        ours = by_key.get((seeds, size, "ours", sampler, spacing, steps))
        if kind == "host_zsnr" and ours is not None:
            found[(sampler, spacing, steps)] = (host, ours, bands[(seeds, size)], seeds)
    return found


def table(found: dict) -> tuple[str, list[str]]:
    spacings = sorted({key[1] for key in found}, key=("trailing", "karras", "logsnr_uniform").index)
    steps = sorted({key[2] for key in found})
    columns = [(spacing, s) for spacing in spacings for s in steps]
    header = "| sampler | " + " | ".join(f"{spacing} {s}" for spacing, s in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    worse = []
    for sampler in dict.fromkeys(key[0] for key in found):
        cells = []
        for spacing, s in columns:
            if (sampler, spacing, s) not in found:
                cells.append("–")
                continue
            host, ours, band, seeds = found[(sampler, spacing, s)]
            mark = ""
            if ours["w1"] - host["w1"] > band:
                mark = " ✗"
                worse.append(f"{sampler} {spacing} {s}: W1 {ours['w1']:.3f} against {host['w1']:.3f} (band {band:.3f})")
            elif host["w1"] - ours["w1"] > band:
                mark = " ✓"
            cells.append(f"{ours['w1']:.3f} / {host['w1']:.3f}{mark}")
        lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    return "\n".join(lines), worse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="quality_per_nfe.py JSON files")
    args = parser.parse_args()
    results = [json.loads(path.read_text()) for path in args.results]
    found = pairs(results)
    text, worse = table(found)
    print("W1 ours / host clamp (lower is better; ✓ ours better, ✗ ours worse, beyond the noise band)\n")
    print(text)
    bands = sorted({(seeds, round(band, 3)) for _, _, band, seeds in found.values()})
    print("\nnoise band (W1 q95 - floor) per seed count: " + ", ".join(f"{s} seeds: {b}" for s, b in bands))
    differences = [abs(o["w1"] - h["w1"]) for h, o, _, _ in found.values()]
    print(f"cells: {len(found)}; ours worse beyond the band: {len(worse)}; largest |W1 difference|: "
          f"{max(differences):.3f}")
    for line in worse:
        print("  worse:", line)


if __name__ == "__main__":
    main()
