"""Figure: our curves over inner updates beside the authors' published runs (mgrl.reproduction).

Two rows (return with the authors' policy per agent, and the gamma of each epoch's updates), one
column per agent: the authors' mean and 95% t-band over their runs (grey) and ours over seeds (the
agent's colour), both at every logged update up to the last compared update count. Drawn by the
`reproduction` rule, not by the figure rules: it reads the authors' extract beside our training.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mgrl.figures.common import save, scheme_colour
from mgrl.reproduction import AUTHORS_AGENTS, OUR_COLUMN
from mgrl.stats import mean_ci

OURS_A2C = "#6a3d9a"


def _band(ax, x, groups, colour, label):
    stats = np.array([mean_ci(g)[:3] for g in groups], dtype=float)
    ax.plot(x, stats[:, 0], color=colour, label=label, marker="o", markersize=2.5)
    ax.fill_between(x, stats[:, 1], stats[:, 2], color=colour, alpha=0.2, linewidth=0)


def plot(training: pd.DataFrame, authors: pd.DataFrame, schemes: list[str], last_update: int,
         out_png: str) -> None:
    agents = [a for a in AUTHORS_AGENTS.values() if a in schemes]
    fig, axes = plt.subplots(2, len(agents), figsize=(3.0 * len(agents), 5.4), squeeze=False,
                             sharex=True)
    ours_all = training[(training["horizon"] == 1)]
    for col, agent in enumerate(agents):
        for row, metric in enumerate(("return", "gamma")):
            ax = axes[row, col]
            theirs = authors[(authors["agent"] == agent) & (authors["metric"] == metric)
                             & (authors["iteration"] <= last_update)]
            if metric == "gamma" and agent == "a2c":
                ax.set_visible(False)
                continue
            policy = str(theirs["policy"].iloc[0]) if not theirs.empty else ""
            if not theirs.empty:
                by_update = theirs.groupby("iteration")["value"]
                _band(ax, np.array(list(by_update.groups)), [g.to_numpy() for _, g in by_update],
                      "#888888", f"authors ({theirs['run'].nunique()} runs)")
            ours = ours_all[(ours_all["scheme"] == agent)
                            & (ours_all["inner_updates"] <= last_update)]
            column = OUR_COLUMN.get((metric, policy))
            if column is not None and not ours.empty:
                by_update = ours.groupby("inner_updates")[column]
                colour = (OURS_A2C if agent == "a2c"  # the shared a2c grey is the authors' here
                          else scheme_colour(agent, [a for a in agents if a != "a2c"]))
                _band(ax, np.array(list(by_update.groups)), [g.to_numpy() for _, g in by_update],
                      colour, f"ours ({ours['seed'].nunique()} seeds)")
            ax.axvline(last_update, color="#444444", linestyle=":", linewidth=0.8)
            ax.set_title(f"{agent}: {metric}" + (f" ({policy})" if policy else ""), fontsize=9)
            ax.grid(alpha=0.3)
            if row == 1 or (metric == "return" and agent == "a2c"):
                ax.set_xlabel("inner updates")
                ax.tick_params(labelbottom=True)  # a2c's gamma panel below it is hidden
            ax.legend(fontsize=6)
    axes[0, 0].set_ylabel("evaluation return (fruits)")
    axes[1, min(1, len(agents) - 1)].set_ylabel("gamma (mean over the epoch)")
    fig.suptitle("Ours vs the authors' published runs (mean, 95% CI)", fontsize=10)
    save(fig, out_png)
