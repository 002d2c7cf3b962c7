"""Aggregation across seeds and the claims table (C1-C4), all computed from the Parquet data.

Confidence intervals are 95% Student-t intervals over independent units: seeds for returns; probed
states (seed x checkpoint) for estimator statistics. Ratios (variance growth, variance reduction,
bias reduction) are averaged in log space, so the reported factor is a geometric mean and its CI is
the exponentiated CI of the mean log-ratio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mgrl.config import BASELINE_SCHEME

FINAL_FRACTION = 0.25  # final return = mean over the last quarter of logging intervals
PAPER_VARIANCE_REDUCTION = 3.0  # [paper] "cuts the variance about 3x on Snake"


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` via a temporary file and rename, so readers never see half a table."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


class DataFileError(RuntimeError):
    """A Parquet input that is missing or damaged; the message names its path."""


def read_parquet(path: str | Path) -> pd.DataFrame:
    """One Parquet file; a missing or damaged file raises :class:`DataFileError` naming it."""
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for damaged files
        raise DataFileError(f"cannot read Parquet file {path}: {type(err).__name__}: {err}") from err


def read_parquets(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate Parquet files; a damaged file is reported by path."""
    frames = [read_parquet(p) for p in paths]
    if not frames:
        raise ValueError("no Parquet files to aggregate")
    return pd.concat(frames, ignore_index=True)


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean and Student-t CI of the finite ``values``: (mean, lo, hi, n); NaN CI when n < 2."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    m = float(np.mean(x))
    if n < 2:
        return m, np.nan, np.nan, n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * np.std(x, ddof=1) / np.sqrt(n))
    return m, m - half, m + half, n


def log_ratio_ci(ratios: Sequence[float]) -> tuple[float, float, float, int]:
    """Geometric mean of positive ``ratios`` and its CI (t-interval of the log-ratios)."""
    r = np.asarray(ratios, dtype=float)
    r = r[np.isfinite(r) & (r > 0)]
    m, lo, hi, n = mean_ci(np.log(r))
    return float(np.exp(m)), float(np.exp(lo)), float(np.exp(hi)), n


def k1_scheme(schemes: Sequence[str]) -> str:
    """The scheme name under which the single K = 1 run is trained (all schemes coincide at K = 1)."""
    return "last" if "last" in schemes else list(schemes)[0]


def expand_k1(frame: pd.DataFrame, schemes: Sequence[str]) -> pd.DataFrame:
    """Copy K = 1 rows (trained once) to every scheme, so each scheme's curve starts at K = 1."""
    meta = frame[frame.scheme != BASELINE_SCHEME]
    k1 = meta[meta.horizon == 1]
    copies = [k1.assign(scheme=s) for s in schemes if s not in set(k1.scheme)]
    return pd.concat([frame, *copies], ignore_index=True)


# ------------------------------------------------------------------------------ training data --


def final_returns(training: pd.DataFrame, fraction: float = FINAL_FRACTION) -> pd.DataFrame:
    """Per (horizon, scheme, seed): mean episode return and reward per step over the final intervals."""
    rows = []
    for (horizon, scheme, seed), g in training.groupby(["horizon", "scheme", "seed"]):
        g = g.sort_values("interval")
        tail = g.tail(max(1, int(np.ceil(fraction * len(g)))))
        rows.append({
            "horizon": horizon, "scheme": scheme, "seed": seed,
            "final_return": float(np.nanmean(tail["train/episode_return"])),
            "final_reward_per_step": float(np.nanmean(tail["train/reward_per_step"])),
            "final_gamma": float(g["meta/gamma"].iloc[-1]),
            "env_steps": int(g["env_steps"].iloc[-1]),
        })
    return pd.DataFrame(rows)


def learning_table(training: pd.DataFrame) -> pd.DataFrame:
    """Per (horizon, scheme): final return mean and 95% CI over seeds."""
    per_seed = final_returns(training)
    rows = []
    for (horizon, scheme), g in per_seed.groupby(["horizon", "scheme"]):
        m, lo, hi, n = mean_ci(g["final_return"])
        rm, rlo, rhi, _ = mean_ci(g["final_reward_per_step"])
        gm, glo, ghi, _ = mean_ci(g["final_gamma"])
        rows.append({"horizon": horizon, "scheme": scheme, "seeds": n,
                     "final_return": m, "final_return_lo": lo, "final_return_hi": hi,
                     "reward_per_step": rm, "reward_per_step_lo": rlo, "reward_per_step_hi": rhi,
                     "final_gamma": gm, "final_gamma_lo": glo, "final_gamma_hi": ghi,
                     "env_steps": int(g["env_steps"].max())})
    return pd.DataFrame(rows).sort_values(["scheme", "horizon"]).reset_index(drop=True)


# ------------------------------------------------------------------------------ probe data --


def estimator_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (horizon, scheme): variance trace, relative error, cosine, SNR over probed states."""
    rows = []
    for (horizon, scheme), g in summary.groupby(["horizon", "scheme"]):
        row = {"horizon": horizon, "scheme": scheme}
        vm, vlo, vhi, n = log_ratio_ci(g["variance_trace"])
        row.update(variance_trace=vm, variance_trace_lo=vlo, variance_trace_hi=vhi, states=n)
        for col in ("relative_error", "cosine_to_reference", "snr"):
            m, lo, hi, _ = mean_ci(g[col])
            row.update({col: m, f"{col}_lo": lo, f"{col}_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["scheme", "horizon"]).reset_index(drop=True)


def paired_ratios(summary: pd.DataFrame, column: str, num: tuple[int, str],
                  den: tuple[int, str]) -> np.ndarray:
    """column(num) / column(den) per probed state (seed, interval), for (horizon, scheme) pairs."""
    keys = ["seed", "interval"]
    a = summary[(summary.horizon == num[0]) & (summary.scheme == num[1])].set_index(keys)[column]
    b = summary[(summary.horizon == den[0]) & (summary.scheme == den[1])].set_index(keys)[column]
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    return (joined["a"] / joined["b"]).to_numpy()


def variance_reduction_table(summary: pd.DataFrame, schemes: Sequence[str]) -> pd.DataFrame:
    """Per (K, mixing scheme): Var[last] / Var[scheme] on the same states, geometric mean and CI."""
    rows = []
    for horizon in sorted(summary.horizon.unique()):
        for scheme in schemes:
            if scheme == "last":
                continue
            ratio = paired_ratios(summary, "variance_trace", (horizon, "last"), (horizon, scheme))
            m, lo, hi, n = log_ratio_ci(ratio)
            rows.append({"horizon": horizon, "scheme": scheme, "reduction": m,
                         "reduction_lo": lo, "reduction_hi": hi, "states": n})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- claims --


def claims_table(training: pd.DataFrame, summary: pd.DataFrame, schemes: Sequence[str]) -> pd.DataFrame:
    """C1-C4 of DEVELOPERS.md, each with the measured value, its 95% CI and a verdict: "holds"
    when the CI meets the claim's criterion, else "not confirmed" (the data do not show it).

    * C1 less bias as K grows: relative error to the reference, ``last`` at K_max / at K_min (< 1).
    * C2 variance grows with K: Var[last, K_max] / Var[last, K_min] (> 1).
    * C3 mixing cuts variance: Var[last, K_max] / Var[mix, K_max] per mixing scheme (> 1; paper ~3).
    * C4 similar or higher return: final return mix - last at K_max, per seed (CI not below 0).
    """
    summary = expand_k1(summary, schemes)
    horizons = sorted(summary.horizon.unique())
    k_min, k_max = horizons[0], horizons[-1]
    rows = []

    def add(claim, statement, measure, value, lo, hi, n, holds, criterion):
        rows.append({"claim": claim, "statement": statement, "measure": measure, "value": value,
                     "ci_lo": lo, "ci_hi": hi, "n": n,
                     "holds": "holds" if holds else "not confirmed", "criterion": criterion})

    ratio = paired_ratios(summary, "relative_error", (k_max, "last"), (k_min, "last"))
    m, lo, hi, n = log_ratio_ci(ratio)
    add("C1", "K-step meta-gradients are less biased as K grows",
        f"relative error to reference, last K={k_max} / K={k_min}", m, lo, hi, n,
        bool(hi < 1.0), "upper CI < 1")

    ratio = paired_ratios(summary, "variance_trace", (k_max, "last"), (k_min, "last"))
    m, lo, hi, n = log_ratio_ci(ratio)
    add("C2", "the variance of K-step meta-gradients grows with K",
        f"Var[last, K={k_max}] / Var[last, K={k_min}]", m, lo, hi, n, bool(lo > 1.0), "lower CI > 1")

    finals = final_returns(expand_k1(training, schemes))
    last_final = finals[(finals.horizon == k_max) & (finals.scheme == "last")].set_index("seed")
    for scheme in schemes:
        if scheme == "last":
            continue
        ratio = paired_ratios(summary, "variance_trace", (k_max, "last"), (k_max, scheme))
        m, lo, hi, n = log_ratio_ci(ratio)
        add("C3", f"mixing ({scheme}) cuts the variance of the K-step meta-gradient "
                  f"(paper: about {PAPER_VARIANCE_REDUCTION:g}x)",
            f"Var[last, K={k_max}] / Var[{scheme}, K={k_max}]", m, lo, hi, n, bool(lo > 1.0),
            "lower CI > 1")
        mix_final = finals[(finals.horizon == k_max) & (finals.scheme == scheme)].set_index("seed")
        diff = (mix_final["final_return"] - last_final["final_return"]).dropna()
        m, lo, hi, n = mean_ci(diff)
        add("C4", f"mixing ({scheme}) has similar or higher return than K-step",
            f"final return {scheme} - last at K={k_max} (per seed)", m, lo, hi, n,
            bool(n >= 2 and hi >= 0.0), "upper CI >= 0 (not significantly lower)")
    return pd.DataFrame(rows)


def claims_markdown(claims: pd.DataFrame) -> str:
    """The claims table as Markdown (what README's Results section copies)."""
    lines = ["| claim | statement | measure | value | 95% CI | n | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in claims.itertuples():
        lines.append(f"| {r.claim} | {r.statement} | {r.measure} | {r.value:.3g} | "
                     f"[{r.ci_lo:.3g}, {r.ci_hi:.3g}] | {r.n} | **{r.holds}** (criterion: {r.criterion}) |")
    return "\n".join(lines) + "\n"
