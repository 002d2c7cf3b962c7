"""Figure (b): bias vs K per scheme: cosine to the reference and relative error (95% CIs)."""

import matplotlib.pyplot as plt

from mgrl.analysis import estimator_table, expand_k1
from mgrl.figures.common import errorbar_by_scheme, save

INPUTS = ("probe_summary",)


def plot(data, schemes, out_png):
    summary = data["probe_summary"]
    table = estimator_table(expand_k1(summary, schemes))
    k_ref = int(summary["reference_horizon"].iloc[0]) if "reference_horizon" in summary else None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    errorbar_by_scheme(ax1, table, "cosine_to_reference", schemes)
    ax1.set_ylabel("cosine(mean meta-gradient, reference)")
    ax1.set_title("Direction agreement with the reference")
    errorbar_by_scheme(ax2, table, "relative_error", schemes)
    ax2.set_ylabel("||mean - reference|| / ||reference||")
    ax2.set_title("Relative error to the reference")
    ax2.legend(title="scheme")
    ref = f" (reference: last, K={k_ref})" if k_ref else ""
    fig.suptitle(f"Bias of meta-gradient estimators{ref}")
    save(fig, out_png)
