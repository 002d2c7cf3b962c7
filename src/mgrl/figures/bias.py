"""Figure (b): bias vs K per scheme: the step cosine to the reference, and the raw-scale debiased
squared bias (95% CIs over seeds).

The step cosine (:func:`mgrl.stats.estimator_statistics`) is the cosine between the expected Adam
steps (mean / RMS per component, over gamma and lambda) of the estimator and of the reference
(``last`` at K_ref, marked by a dotted line; its own value is 1 by definition): 1 = the
estimator's steps point where the long-horizon ones do. Per seed the mean over its probed states,
CI over seeds on the atanh scale (inside [-1, 1]). The debiased squared bias ||E g - E g_ref||^2 is
in the estimators' raw units (t scale; it may be < 0), shown on a symmetric log axis: it mostly
measures the meta-gradient's scale, which Adam divides out.
"""

import matplotlib.pyplot as plt
import numpy as np

from mgrl.analysis import estimator_table
from mgrl.figures.common import errorbar_by_scheme, save

INPUTS = ("probe_summary",)


def plot(data, schemes, out_png):
    summary = data["probe_summary"]
    table = estimator_table(summary)
    k_ref = int(summary["reference_horizon"].max())
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    errorbar_by_scheme(ax1, table, "step_cosine", schemes)
    ax1.set_ylim(-1.05, 1.05)
    ax1.axhline(0.0, color="black", linewidth=0.8)
    ax1.axvline(k_ref, color="grey", linestyle=":", linewidth=1.2)
    ax1.plot([k_ref], [1.0], marker="*", color="grey", markersize=10, linestyle="none",
             label=f"reference (last, K_ref={k_ref})")
    ticks = sorted({*table.horizon.astype(int), k_ref})
    ax1.set_xticks(ticks)
    ax1.set_xticklabels([str(k) for k in ticks])
    ax1.set_ylabel("cosine(expected Adam step, reference's)")
    ax1.set_title("Step agreement with the long-horizon reference")
    ax1.legend(title="scheme", fontsize=8)
    errorbar_by_scheme(ax2, table, "bias2_debiased", schemes)
    scale = float(np.nanmax(np.abs(table["bias2_debiased"]))) if len(table) else 1.0
    ax2.set_yscale("symlog", linthresh=max(1e-3 * scale, 1e-300) if np.isfinite(scale) else 1.0)
    ax2.axhline(0.0, color="black", linewidth=0.8)
    ax2.set_ylabel("debiased ||E g - E g_ref||^2 (raw units)")
    ax2.set_title("Raw-scale squared bias (mostly scale)")
    fig.suptitle(f"Bias of meta-gradient estimators against last at K_ref={k_ref}; "
                 f"95% CIs over seeds")
    save(fig, out_png)
