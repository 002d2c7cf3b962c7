"""Figure (g): final return vs fixed gamma (a2c sweep, 95% CIs over seeds), with the meta-learned
runs' final gamma and return marked on the same axes.

It answers whether gamma matters in the chosen setting: if the fixed-gamma curve is flat, no
estimator of the meta-gradient can show up in the return.
"""

import matplotlib.pyplot as plt
import numpy as np

from mgrl.analysis import FINAL_FRACTION, sensitivity_table
from mgrl.figures.common import save, scheme_colour

INPUTS = ("training", "sensitivity")
EXPAND_ALIASES = False  # each trained run once: aliases would stack identical points

MARKERS = "osD^v<>ph*"


def plot(data, schemes, out_png):
    table = sensitivity_table(data["training"], data["sensitivity"])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    fixed = table[table.kind == "fixed"].sort_values("gamma")
    if not fixed.empty:
        y = fixed["final_return"].to_numpy(float)
        err = np.abs(np.vstack([y - fixed["final_return_lo"], fixed["final_return_hi"] - y]))
        ax.errorbar(fixed["gamma"], y, yerr=np.nan_to_num(err), color="#444444", marker="o",
                    capsize=3, label="a2c, fixed gamma")
        base = fixed[fixed.scheme == "a2c"]
        if not base.empty:
            ax.axvline(float(base["gamma"].iloc[0]), color="#444444", linestyle=":", linewidth=0.9,
                       label="initial gamma of meta-learned runs")
    learned = table[table.kind == "meta-learned"]
    horizons = sorted(learned.horizon.unique())
    for _, r in learned.iterrows():
        marker = MARKERS[horizons.index(r.horizon) % len(MARKERS)]
        xerr = np.nan_to_num(np.abs([[r.gamma - r.gamma_lo], [r.gamma_hi - r.gamma]]))
        yerr = np.nan_to_num(np.abs([[r.final_return - r.final_return_lo],
                                     [r.final_return_hi - r.final_return]]))
        ax.errorbar([r.gamma], [r.final_return], xerr=xerr, yerr=yerr, marker=marker,
                    linestyle="none", capsize=2, color=scheme_colour(r.scheme, schemes),
                    label=f"meta-learned K={r.horizon} {r.scheme}")
    ax.set_xlabel("gamma (fixed, or final meta-learned value)")
    ax.set_ylabel(f"final episode return (last {FINAL_FRACTION:.0%} of training)")
    ax.set_title("Sensitivity of the return to gamma (mean, 95% CI over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, out_png)
