"""Figure (b): bias vs K per scheme: debiased squared bias and cosine to the reference (95% CIs).

Both over every meta-parameter direction (gamma and lambda), per seed the mean over its probed
states, CIs over seeds: the debiased bias on a t scale (it may be below 0: an unbiased estimate of a
small number), the cosine on the atanh scale (inside [-1, 1]).
"""

import matplotlib.pyplot as plt

from mgrl.analysis import estimator_table
from mgrl.figures.common import errorbar_by_scheme, save

INPUTS = ("probe_summary",)


def plot(data, schemes, out_png):
    summary = data["probe_summary"]
    table = estimator_table(summary)
    k_ref = int(summary["reference_horizon"].iloc[0]) if "reference_horizon" in summary else None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    errorbar_by_scheme(ax1, table, "relative_bias2", schemes)
    ax1.axhline(0.0, color="black", linewidth=0.8)
    ax1.set_ylabel("debiased ||E g - E g_ref||^2 / ||ref||^2")
    ax1.set_title("Debiased squared bias to the reference")
    errorbar_by_scheme(ax2, table, "cosine_to_reference", schemes)
    ax2.set_ylim(-1.05, 1.05)
    ax2.axhline(0.0, color="black", linewidth=0.8)
    ax2.set_ylabel("cosine(mean meta-gradient, reference)")
    ax2.set_title("Direction agreement (gamma, lambda)")
    ax2.legend(title="scheme")
    ref = f" (reference: last, K={k_ref})" if k_ref else ""
    fig.suptitle(f"Bias of meta-gradient estimators{ref}; 95% CIs over seeds")
    save(fig, out_png)
