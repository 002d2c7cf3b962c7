"""Figure (a): meta-gradient variance vs K per scheme (log scale; geometric mean and 95% CI over seeds)."""

import matplotlib.pyplot as plt

from mgrl.analysis import estimator_table
from mgrl.figures.common import errorbar_by_scheme, save

INPUTS = ("probe_summary",)


def plot(data, schemes, out_png):
    table = estimator_table(data["probe_summary"])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    errorbar_by_scheme(ax, table, "variance_trace", schemes, log=True)
    ax.set_ylabel("trace Var[meta-gradient]  (d loss / d eta)^2")
    ax.set_title("Meta-gradient variance vs horizon K")
    ax.legend(title="scheme")
    save(fig, out_png)
