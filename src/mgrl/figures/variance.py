"""Figure (a): meta-gradient variance vs K per estimator (geometric mean and 95% CI over seeds).

Left: trace Var[g] in the estimator's own units (comparable between weighting schemes of the same
policy-gradient meta-loss, not with a ``bmg`` KL gradient). Middle and right: the scale-free
signal-to-noise ratio ||E g||^2 / trace Var[g] and the variance of the normalised direction
g / ||g||, which compare every estimator in the config, BMG and outer critic included.
"""

import matplotlib.pyplot as plt

from mgrl.analysis import estimator_table
from mgrl.figures.common import errorbar_by_scheme, save

INPUTS = ("probe_summary",)


def plot(data, schemes, out_png):
    table = estimator_table(data["probe_summary"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    errorbar_by_scheme(axes[0], table, "variance_trace", schemes, log=True)
    axes[0].set_ylabel("trace Var[meta-gradient]  (d loss / d eta)^2")
    axes[0].set_title("Variance (own units)")
    errorbar_by_scheme(axes[1], table, "snr", schemes, log=True)
    axes[1].set_ylabel("||mean||^2 / trace Var  (per sample)")
    axes[1].set_title("Signal-to-noise ratio (scale-free)")
    errorbar_by_scheme(axes[2], table, "direction_variance", schemes, log=True)
    axes[2].set_ylabel("trace Var[g / ||g||]")
    axes[2].set_title("Variance of the direction (scale-free)")
    axes[0].legend(title="estimator")
    fig.suptitle("Meta-gradient variance vs horizon K; 95% CIs over seeds")
    save(fig, out_png)
