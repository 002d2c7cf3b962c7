"""Does gamma matter as much on the unmasked task as on config.yaml's masked one?

    python benchmarks/unmasked_sensitivity.py [--cores 2]

Trains, through the real Snakefile, config.yaml's fixed-gamma a2c runs at gamma 0.1 (the a2c
baseline) and 0.99 on both tasks: config.yaml (results/default/) and config.yaml with
config/overlays/unmasked.yaml (results/default_unmasked/); runs already there are reused. Prints,
per task, each gamma's mean final return (training return over the last quarter of intervals,
mgrl.analysis.final_returns) with its 95% t-interval over seeds, and the gamma effect
(0.99 - 0.1) with its Welch 95% interval and relative to the return at 0.1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pandas as pd

from mgrl.analysis import final_returns
from mgrl.config import load_config
from mgrl.stats import mean_ci, welch_difference_ci

TASKS = {"masked (config.yaml)": ("default", ["config.yaml"]),
         "unmasked (+ config/overlays/unmasked.yaml)": ("default_unmasked",
                                                        ["config.yaml", "config/overlays/unmasked.yaml"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="2")
    args = parser.parse_args()
    seeds = load_config("config.yaml").seeds
    for task, (name, configs) in TASKS.items():
        runs = [f"results/{name}/runs/K1/{scheme}/seed{s}/metrics.parquet"
                for scheme in ("a2c", "a2c_gamma0.99") for s in seeds]
        subprocess.run([sys.executable, "-m", "snakemake", "--cores", args.cores, *runs,
                        "--configfile", *configs], check=True)
        finals = final_returns(pd.concat([pd.read_parquet(r) for r in runs]))
        low = finals.loc[finals.scheme == "a2c", "final_return"].to_numpy()
        high = finals.loc[finals.scheme == "a2c_gamma0.99", "final_return"].to_numpy()
        print(f"\n{task}, seeds {list(seeds)}:")
        for gamma, values in (("0.1", low), ("0.99", high)):
            m, lo, hi, n = mean_ci(values)
            print(f"  gamma {gamma}: final return {m:.2f} [{lo:.2f}, {hi:.2f}] ({n} seeds)")
        d, lo, hi = welch_difference_ci(high, low)
        print(f"  gamma effect 0.99 - 0.1: {d:.2f} [{lo:.2f}, {hi:.2f}] "
              f"({d / low.mean():+.0%} of the return at 0.1)")


if __name__ == "__main__":
    main()
