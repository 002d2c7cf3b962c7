"""Figure (c): variance-reduction factor Var[K-step] / Var[mixing] vs K (same states, 95% CIs); the
K-step scheme is the config's ``k_step`` role (:func:`mgrl.runs.claim_roles`)."""

import matplotlib.pyplot as plt
import numpy as np

from mgrl.analysis import PAPER_VARIANCE_REDUCTION, variance_reduction_table
from mgrl.figures.common import save, scheme_colour
from mgrl.runs import claim_roles

INPUTS = ("probe_summary",)
MIXING_ONLY = True  # raw variances of one meta-loss: bmg / outer-critic schemes are left out
NEEDS_CONFIG = True  # the K-step scheme: claim_roles(cfg)


def plot(data, schemes, out_png, cfg):
    roles = claim_roles(cfg)
    k_step = roles.get("k_step", "K-step")
    table = variance_reduction_table(data["probe_summary"], schemes, roles)
    table = table[np.isfinite(table["reduction"].to_numpy(float))]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    if table.empty:  # no mixing scheme beside the K-step one (e.g. config/published.yaml)
        ax.text(0.5, 0.5, "no mixing scheme in this experiment", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        save(fig, out_png)
        return
    for scheme, g in table.groupby("scheme"):
        g = g.sort_values("horizon")
        y = g["reduction"].to_numpy(float)
        err = np.abs(np.vstack([y - g["reduction_lo"], g["reduction_hi"] - y]))
        ax.errorbar(g["horizon"], y, yerr=np.nan_to_num(err), marker="o", capsize=3, label=scheme,
                    color=scheme_colour(scheme, schemes))
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(PAPER_VARIANCE_REDUCTION, color="grey", linestyle="--", linewidth=0.8,
               label=f"paper: ~{PAPER_VARIANCE_REDUCTION:g}x")
    ax.set_xscale("log", base=2)
    horizons = sorted(table.horizon.unique()) if len(table) else []
    ax.set_xticks(horizons)
    ax.set_xticklabels([str(h) for h in horizons])
    ax.set_yscale("log")
    ax.set_xlabel("K (inner updates per meta-update)")
    ax.set_ylabel(f"Var[{k_step}] / Var[mixing]  (x-fold reduction)")
    ax.set_title("Variance reduction by mixing the K inner steps")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, out_png)
