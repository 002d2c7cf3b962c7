"""Shared plotting helpers: consistent colours per scheme, CI error bars and bands, PNG + PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mgrl.stats import logit_mean_ci, mean_ci  # noqa: E402

COLOURS = ["#1b6ca8", "#d1495b", "#66a182", "#edae49", "#8e6c8a", "#00798c", "#30638e"]


def scheme_colour(scheme: str, schemes: list[str]) -> str:
    if scheme == "a2c":
        return "#444444"
    return COLOURS[list(schemes).index(scheme) % len(COLOURS)] if scheme in schemes else "#999999"


def errorbar_by_scheme(ax, table: pd.DataFrame, column: str, schemes: list[str], log: bool = False):
    """One line per scheme of ``column`` vs horizon with [column_lo, column_hi] error bars."""
    for scheme in schemes:
        g = table[table.scheme == scheme].sort_values("horizon")
        if g.empty:
            continue
        y = g[column].to_numpy(float)
        err = np.vstack([y - g[f"{column}_lo"].to_numpy(float), g[f"{column}_hi"].to_numpy(float) - y])
        ax.errorbar(g["horizon"], y, yerr=np.nan_to_num(np.abs(err)), marker="o", capsize=3,
                    label=scheme, color=scheme_colour(scheme, schemes))
    ax.set_xscale("log", base=2)
    horizons = sorted(table.horizon.unique())
    ax.set_xticks(horizons)
    ax.set_xticklabels([str(h) for h in horizons])
    ax.set_xlabel("K (inner updates per meta-update)")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)


def band(ax, frame: pd.DataFrame, x: str, y: str, label: str, colour: str, linestyle: str = "-",
         unit_interval: bool = False):
    """Mean over seeds of ``y`` against ``x`` with a 95% CI band (rows aligned by interval);
    ``unit_interval``: ``y`` lies in (0, 1) (gamma, lambda), its CI from the mean logit."""
    interval_ci = logit_mean_ci if unit_interval else mean_ci
    stats_rows = []
    for interval, g in frame.groupby("interval"):
        m, lo, hi, _ = interval_ci(g[y])
        stats_rows.append((g[x].mean(), m, lo, hi))
    if not stats_rows:
        return
    s = np.array(sorted(stats_rows))
    ax.plot(s[:, 0], s[:, 1], label=label, color=colour, linestyle=linestyle)
    ax.fill_between(s[:, 0], s[:, 2], s[:, 3], color=colour, alpha=0.2, linewidth=0)


def save(fig, out_png: str | Path) -> None:
    """Write ``out_png`` and a PDF beside it."""
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    fig.savefig(out_png.with_suffix(".pdf"))
    plt.close(fig)
