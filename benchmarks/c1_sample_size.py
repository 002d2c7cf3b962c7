"""How many probe samples C1 needs (docs/results.md), computed from the measured variances.

C1 compares the normalised debiased squared bias of ``last`` at K_max and K_min,
rb2 = (||mean - ref||^2 - tr Var/M - tr Var_ref/M_ref) / ||ref||^2, per probed state, averaged per
seed, with a t-interval over seeds. For Gaussian sample means, d = mean - ref ~ N(delta, C) with
C = Var/M + Var_ref/M_ref, and ||d||^2 - tr C has variance 4 delta^T C delta + 2 tr(C^2). This script
plugs the measured per-state covariances (from samples.parquet) into that formula at a range of M
(with M_ref = M), adds the between-seed spread that is not sampling noise (observed variance of the
per-seed values minus their sampling variance, floored at 0), and prints the predicted 95%
half-width of C1 next to the target: half of |rb2(K_min)| (a CI that narrow can tell a halving of
the bias from none).

Usage: python benchmarks/c1_sample_size.py [results/metrics/probe_samples.parquet]
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy import stats

PARAMETERS = ("gamma", "lambda")


def state_moments(samples: pd.DataFrame, role: str, horizon: int, scheme: str):
    """{(seed, interval): (mean [D], covariance [D, D], M)} of one estimator's samples."""
    rows = samples[(samples.role == role) & (samples.horizon == horizon) & (samples.scheme == scheme)]
    out = {}
    for (seed, interval), g in rows.groupby(["seed", "interval"]):
        x = g.pivot(index="sample", columns="meta_parameter", values="value")[list(PARAMETERS)].to_numpy()
        out[(seed, interval)] = (x.mean(0), np.cov(x, rowvar=False, ddof=1), len(x))
    return out


def rb2_and_noise(est, ref, m: int | None = None):
    """Normalised debiased squared bias and its sampling variance at M = M_ref = m (None: as measured)."""
    (mu, cov, n), (r, rcov, nr) = est, ref
    n, nr = (n, nr) if m is None else (m, m)
    c = cov / n + rcov / nr
    d = mu - r
    norm2 = float(r @ r)
    rb2 = (float(d @ d) - np.trace(c)) / norm2
    noise = (4 * float(d @ c @ d) + 2 * np.trace(c @ c)) / norm2**2
    return rb2, noise


def main(path: str = "results/metrics/probe_samples.parquet") -> None:
    samples = pd.read_parquet(path)
    est = samples[samples.role == "estimate"]
    k_min, k_max = int(est.horizon.min()), int(est.horizon.max())
    k_ref = int(samples[samples.role == "reference"].horizon.max())
    lo, hi = state_moments(samples, "estimate", k_min, "last"), state_moments(samples, "estimate", k_max, "last")
    ref = state_moments(samples, "reference", k_ref, "last")
    m_now = next(iter(lo.values()))[2]
    seeds = sorted({s for s, _ in ref})

    def per_seed(m):
        values, noises, base = [], [], []
        for seed in seeds:
            keys = [k for k in ref if k[0] == seed]
            diffs, var = [], 0.0
            for k in keys:
                a, va = rb2_and_noise(hi[k], ref[k], m)
                b, vb = rb2_and_noise(lo[k], ref[k], m)
                diffs.append(a - b)
                var += va + vb
                base.append(b)
            values.append(np.mean(diffs))
            noises.append(var / len(keys) ** 2)
        return np.array(values), np.array(noises), np.array(base)

    values, noises, base = per_seed(None)
    n = len(values)
    t = stats.t.ppf(0.975, n - 1)
    between = max(0.0, values.var(ddof=1) - noises.mean())
    target = abs(base.mean()) / 2
    print(f"C1 at M = M_ref = {m_now}: per-seed values {np.round(values, 2).tolist()}, "
          f"mean {values.mean():.3g}, observed half-width {t * values.std(ddof=1) / np.sqrt(n):.3g}")
    print(f"sampling variance of a per-seed value (mean over seeds) {noises.mean():.3g}; "
          f"between-seed variance beyond it {between:.3g}; target half-width |rb2(K={k_min})|/2 = {target:.3g}")
    # Two predictions: the plug-in formula (conservative: ||d||^2 overstates ||delta||^2), and the
    # observed half-width scaled by the formula's dependence on M (what the data say at M_now).
    observed = t * values.std(ddof=1) / np.sqrt(n)
    plug_now = t * np.sqrt((between + noises.mean()) / n)
    print("M = M_ref | plug-in half-width | scaled observed half-width | scaled within target")
    for m in (32, 64, 128, 256, 512, 1024, 2048, 4096):
        _, noise_m, _ = per_seed(m)
        half = t * np.sqrt((between + noise_m.mean()) / n)
        scaled = observed * half / plug_now
        print(f"{m:9d} | {half:18.3g} | {scaled:26.3g} | {scaled < target}")


if __name__ == "__main__":
    main(*sys.argv[1:])
