"""How many probe samples (or seeds) C1 needs, computed from the measured variances.

C1 compares the step cosine (the cosine between the expected Adam steps a = mean / RMS per
component of an estimator and of the reference, :func:`mgrl.stats.estimator_statistics`) of
``last`` at K_max and at K_min on the same state: d = cos_Kmax - cos_Kmin, per seed the mean over
its S probed states, a CI over the n seeds. The variance of a seed's value has two parts:

    Var[d_seed] = B + W(M) / S,   W(M) ~ W(M0) M0 / M

W, the sampling variance of d at a state, from a paired bootstrap of that state's keys at the
measured M0 (it falls like 1/M: every term of d is a smooth function of means of M samples); B,
the spread between seeds that no M removes (the observed variance of the per-seed values minus
their sampling part, floored at 0). The predicted 95% half-width at M samples and n seeds is
t_{n-1} sqrt((B + W(M) / S) / n). Printed per seed set, one JSON line each: the measured d and
half-width, B and W, the smallest M (M_ref = M, powers of two up to 2^16) whose half-width at the
measured n is below |d| (a CI of that width excludes 0 if d is the truth) and below the claims'
``step_cosine_effect``, and where no M suffices the seeds that would. Probe time per state grows
like M (one forward pass of K_ref steps per key). Also printed: the range over states and
components of Var[mean g - mean r] with paired keys over that with independent keys, (Var g + Var
r - 2 Cov) / (Var g + Var r), for K_min and K_max: what sharing the reference's keys does to the
noise of a difference to the reference.

Usage: python benchmarks/c1_sample_size.py results/default/metrics/probe_samples.parquet \
           [results/default/replicate/metrics/probe_samples.parquet ...] [--effect 0.2]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
from scipy import special

from mgrl.config import META_PARAMETERS
from mgrl.stats import estimator_statistics, paired_bootstrap_indices

BOOTSTRAP = 500
MAX_LOG2_M = 16


def matrix(rows: pd.DataFrame) -> np.ndarray:
    """[M, D] of one (role, K, scheme) at one state, by sample index."""
    wide = rows.pivot(index="sample", columns="meta_parameter", values="value")
    return wide[list(META_PARAMETERS)].to_numpy(np.float64)


def state_difference(g_max, g_min, reference, rng) -> tuple[float, float]:
    """d = step_cosine(K_max) - step_cosine(K_min) at one state, and its paired-bootstrap variance
    (keys resampled together: estimates and reference share them)."""
    num = len(reference)
    d = (estimator_statistics(g_max, reference, num)["step_cosine"]
         - estimator_statistics(g_min, reference, num)["step_cosine"])
    rows, _ = paired_bootstrap_indices(num, num, num, BOOTSTRAP, rng)
    boot = (estimator_statistics(g_max[rows], reference[rows], num)["step_cosine"]
            - estimator_statistics(g_min[rows], reference[rows], num)["step_cosine"])
    return float(d), float(np.nanvar(boot, ddof=1))


def t_quantile(n: int) -> float:
    return float(special.stdtrit(n - 1, 0.975))


def analyse(path: str, effect: float) -> dict:
    samples = pd.read_parquet(path)
    estimates = samples[(samples.role == "estimate") & (samples.scheme == "last")]
    k_min, k_max = int(estimates.horizon.min()), int(estimates.horizon.max())
    rng = np.random.default_rng(0)
    rows, pairing = [], []
    for (seed, interval), g in samples.groupby(["seed", "interval"]):
        reference = matrix(g[g.role == "reference"])
        est = g[(g.role == "estimate") & (g.scheme == "last")]
        g_max, g_min = matrix(est[est.horizon == k_max]), matrix(est[est.horizon == k_min])
        d, w = state_difference(g_max, g_min, reference, rng)
        rows.append({"seed": seed, "interval": interval, "d": d, "w": w, "m": len(reference)})
        for x in (g_min, g_max):  # Var[mean g - mean r], paired keys / independent keys
            for j in range(x.shape[1]):
                pairing.append(np.var(x[:, j] - reference[:, j], ddof=1)
                               / (np.var(x[:, j], ddof=1) + np.var(reference[:, j], ddof=1)))
    states = pd.DataFrame(rows)
    per_seed = states.groupby("seed").agg(d=("d", "mean"), w=("w", "mean"), s=("d", "size"))
    n, m0, s = len(per_seed), int(states.m.iloc[0]), float(per_seed.s.mean())
    mean = float(per_seed.d.mean())
    observed = float(per_seed.d.var(ddof=1))
    within = float((per_seed.w / per_seed.s).mean())  # W(M0) / S, averaged over seeds
    between = max(observed - within, 0.0)

    def half_width(m: int, seeds: int) -> float:
        return t_quantile(seeds) * np.sqrt((between + within * m0 / m) / seeds)

    def smallest_m(target: float):
        for k in range(1, MAX_LOG2_M + 1):
            if half_width(2**k, n) < target:
                return 2**k
        return None

    def seeds_needed(target: float, m: int):
        for seeds in range(2, 1001):
            if half_width(m, seeds) < target:
                return seeds
        return None

    target = abs(mean)
    return {
        "kind": "c1_sample_size", "samples": path, "k_min": k_min, "k_max": k_max,
        "seeds": n, "states_per_seed": s, "m": m0, "d": round(mean, 4),
        "half_width_measured_model": round(half_width(m0, n), 4),
        "between_seed_var": round(between, 5), "within_seed_var_at_m": round(within, 5),
        "m_to_decide_measured_d": smallest_m(target),
        "seeds_to_decide_measured_d_at_m": seeds_needed(target, m0),
        "seeds_to_decide_measured_d_at_4m": seeds_needed(target, 4 * m0),
        "pairing_variance_ratio_range": [round(float(np.min(pairing)), 3),
                                         round(float(np.max(pairing)), 3)],
        "effect": effect, "m_to_resolve_effect": smallest_m(effect),
        "seeds_to_resolve_effect_at_m": seeds_needed(effect, m0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="+", help="probe_samples.parquet of one seed set each")
    parser.add_argument("--effect", type=float, default=0.2, help="claims.step_cosine_effect")
    args = parser.parse_args()
    for path in args.samples:
        print(json.dumps(analyse(path, args.effect)), flush=True)


if __name__ == "__main__":
    main()
