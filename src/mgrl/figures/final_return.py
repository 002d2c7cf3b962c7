"""Figure (f): final return per estimator (K, scheme), mean and 95% CI over seeds; a2c as a band."""

import matplotlib.pyplot as plt
import numpy as np

from mgrl.analysis import FINAL_FRACTION, learning_table
from mgrl.figures.common import save, scheme_colour

INPUTS = ("training",)


def plot(data, schemes, out_png):
    table = learning_table(data["training"])
    fig, ax = plt.subplots(figsize=(6, 4))
    base = table[table.scheme == "a2c"]
    if not base.empty:
        b = base.iloc[0]
        ax.axhspan(b.final_return_lo, b.final_return_hi, color="#444444", alpha=0.15)
        ax.axhline(b.final_return, color="#444444", linestyle="--", label="a2c (fixed gamma)")
    horizons = sorted(table[table.scheme != "a2c"].horizon.unique())
    width = 0.8 / max(1, len(schemes))
    for i, scheme in enumerate(schemes):
        g = table[table.scheme == scheme].set_index("horizon").reindex(horizons)
        x = np.arange(len(horizons)) + (i - (len(schemes) - 1) / 2) * width
        y = g["final_return"].to_numpy(float)
        err = np.abs(np.vstack([y - g["final_return_lo"], g["final_return_hi"] - y]))
        ax.errorbar(x, y, yerr=np.nan_to_num(err), fmt="o", capsize=3, label=scheme,
                    color=scheme_colour(scheme, schemes))
    ax.set_xticks(np.arange(len(horizons)))
    ax.set_xticklabels([f"K={h}" for h in horizons])
    ax.set_ylabel(f"final episode return (last {FINAL_FRACTION:.0%} of training)")
    ax.set_title("Final return per meta-gradient estimator")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    save(fig, out_png)
