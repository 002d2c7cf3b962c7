"""Which difference from the authors' regime matters? The outer critic's gamma gap, arm by arm.

    python benchmarks/authors_ablation.py [--cores 2] [--updates 1168]

From config/authors_snake.yaml (the authors' regime), each arm of config/overlays/authors_*.yaml
puts back one setting of ours (masking on; 32 environments; Adam inside; reused validation data)
on seeds 0-2. Trains, through the real Snakefile, mg and mg_oc of every arm (and of the authors'
regime itself, results/authors_snake/, when its runs are not there yet), then prints a Markdown
table: per arm, MG's and MG + outer critic's gamma (meta/gamma_mean, the authors' logged gamma) at
``--updates`` inner updates and their gap mg_oc - mg paired by seed (the two schemes share each
seed's initialisation and key stream), with 95% t-intervals over the 3 seeds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from mgrl.config import read_yaml
from mgrl.reproduction import OUR_COLUMN
from mgrl.stats import mean_ci

BASE = "config/authors_snake.yaml"
SEEDS = (0, 1, 2)


def arms() -> dict[str, list[str]]:
    """Arm label -> its config files (the base, then the overlay)."""
    out = {"authors' regime": [BASE]}
    for overlay in sorted(Path("config/overlays").glob("authors_*.yaml")):
        out[f"{overlay.stem.removeprefix('authors_')} put back"] = [BASE, str(overlay)]
    return out


def name_of(configs: list[str]) -> str:
    return read_yaml(configs[-1])["name"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="2")
    parser.add_argument("--updates", type=int, default=1168)
    args = parser.parse_args()
    column = OUR_COLUMN[("gamma", "")]
    lines = ["| arm | mg gamma | mg_oc gamma | mg_oc - mg, paired (3 seeds) |", "|---|---|---|---|"]
    for label, configs in arms().items():
        name = name_of(configs)
        runs = {scheme: [f"results/{name}/runs/K1/{scheme}/seed{s}/metrics.parquet" for s in SEEDS]
                for scheme in ("mg", "mg_oc")}
        subprocess.run([sys.executable, "-m", "snakemake", "--cores", args.cores,
                        *runs["mg"], *runs["mg_oc"], "--configfile", *configs], check=True)
        at = {}
        for scheme, paths in runs.items():
            frame = pd.concat([pd.read_parquet(p) for p in paths])
            at[scheme] = frame[frame["inner_updates"] == args.updates].set_index("seed")[column]
        cells = [mean_ci(at[s].to_numpy()) for s in ("mg", "mg_oc")]
        gap = mean_ci((at["mg_oc"] - at["mg"]).dropna().to_numpy())
        lines.append(f"| {label} | " + " | ".join(f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
                                                   for m, lo, hi, _ in (*cells, gap)) + " |")
    print(f"\nGamma at {args.updates} inner updates, seeds {list(SEEDS)} (95% t-intervals):\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
