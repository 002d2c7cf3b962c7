"""Figure (h): the variance intervention: final return and final gamma vs M, the meta-gradient
samples averaged per meta-update, one line per (K, weighting kind, meta-optimiser and rate: the
controls' lines are labelled by theirs); fixed-gamma a2c runs as bands.

Averaging M independent windows from the same state keeps the meta-gradient's expectation and
divides its variance by M, at the same K, data and number of meta-updates (``meta.samples``,
``schemes.<name>.meta_samples``). Means and 95% CIs over seeds (return: t; gamma: logit scale).
Drawn only for configs with averaged schemes (Snakemake requests it then).
"""

import matplotlib.pyplot as plt
import numpy as np

from mgrl.analysis import learning_table, sensitivity_table
from mgrl.runs import meta_of, meta_samples_of, scheme_of
from mgrl.figures.common import save

INPUTS = ("training", "sensitivity")
NEEDS_CONFIG = True


def _meta_update_label(cfg, scheme: str) -> str:
    """'' for the experiment's meta-optimiser and rate, else ', <optimiser> lr <rate>'."""
    meta = meta_of(cfg, scheme)
    if (meta.optimizer, meta.learning_rate) == (cfg.meta.optimizer, cfg.meta.learning_rate):
        return ""
    return f", {meta.optimizer} lr {meta.learning_rate:g}"


def plot(data, schemes, out_png, cfg):
    table = learning_table(data["training"])
    table = table[table.scheme.isin(list(schemes))].copy()
    table["kind"] = [scheme_of(cfg, s).kind for s in table.scheme]
    table["m"] = [meta_samples_of(cfg, s) for s in table.scheme]
    table["update"] = [_meta_update_label(cfg, s) for s in table.scheme]
    fixed = sensitivity_table(data["training"], data["sensitivity"])
    fixed = fixed[fixed.kind == "fixed"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.cm.Greys(np.linspace(0.25, 0.6, max(1, len(fixed))))
    for colour, row in zip(colours, fixed.itertuples()):
        ax1.axhspan(row.final_return_lo, row.final_return_hi, color=colour, alpha=0.25)
        ax1.axhline(row.final_return, color=colour, linewidth=0.8)
        ax1.annotate(f"fixed gamma {row.gamma:g}", (1.0, row.final_return), fontsize=7,
                     xytext=(2, 2), textcoords="offset points", color="#333333")
        ax2.axhline(row.gamma, color=colour, linewidth=0.8, linestyle=":")
    for (horizon, kind, update), g in table.groupby(["horizon", "kind", "update"]):
        g = g.sort_values("m")
        label = f"{kind}, K={horizon}{update}"
        for ax, col in ((ax1, "final_return"), (ax2, "final_gamma")):
            y = g[col].to_numpy(float)
            err = np.abs(np.vstack([y - g[f"{col}_lo"], g[f"{col}_hi"] - y]))
            ax.errorbar(g["m"], y, yerr=np.nan_to_num(err), marker="o", capsize=3, label=label)
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ms = sorted(table.m.unique())
        ax.set_xticks(ms)
        ax.set_xticklabels([str(m) for m in ms])
        ax.set_xlabel("M, meta-gradient samples averaged per meta-update")
        ax.grid(alpha=0.3)
    ax1.set_ylabel("final episode return")
    ax1.set_title("Return vs M (bands: fixed-gamma a2c)")
    ax2.set_ylabel("final gamma")
    ax2.set_ylim(0, 1)
    ax2.set_title("Meta-learned gamma vs M (dotted: the fixed gammas)")
    ax2.legend(fontsize=8)
    fig.suptitle("The variance intervention: same K, data and meta-updates, variance / M; "
                 "95% CIs over seeds")
    save(fig, out_png)
