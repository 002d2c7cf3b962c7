"""One summary row per (state, K, scheme): the estimator statistics of its samples against the
reference's (:func:`mgrl.stats.estimator_statistics`), with percentile-bootstrap CIs."""

from __future__ import annotations

import numpy as np

from mgrl.config import META_PARAMETERS
from mgrl.stats import bootstrap_intervals, estimator_statistics, normalised_step

SUMMARY_STATISTICS = ("step_cosine", "variance_trace", "snr", "cosine_to_reference",
                      "bias2_debiased", "direction_variance")


def summarise_samples(
    samples: np.ndarray,
    reference_samples: np.ndarray,
    shared: int,
    num_resamples: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """One summary row's statistics from samples [M, D] and reference samples [M_ref, D], D = 2
    (every meta-parameter's component, learned or not), the first ``shared`` rows paired."""
    samples = np.asarray(samples, np.float64)
    reference_samples = np.asarray(reference_samples, np.float64)
    every = estimator_statistics(samples, reference_samples, shared)
    every_ci = bootstrap_intervals(samples, reference_samples, shared, num_resamples, rng)
    row: dict[str, float] = {"shared_samples": shared}
    for name in SUMMARY_STATISTICS:
        row[name] = float(every[name])
        row[f"{name}_lo"], row[f"{name}_hi"] = (float(v) for v in every_ci[name])
    reference_variance = (reference_samples.var(axis=0, ddof=1) if len(reference_samples) > 1
                          else np.zeros(len(META_PARAMETERS)))
    reference_step = normalised_step(reference_samples)
    for d, p in enumerate(META_PARAMETERS):
        row[f"mean_{p}"] = float(every["mean"][d])
        row[f"mean_{p}_lo"] = float(every_ci["mean"][0][d])
        row[f"mean_{p}_hi"] = float(every_ci["mean"][1][d])
        row[f"var_{p}"] = float(every["variance"][d])
        row[f"reference_{p}"] = float(reference_samples[:, d].mean())
        row[f"reference_var_{p}"] = float(reference_variance[d])
        row[f"step_{p}"] = float(every["step"][d])
        row[f"reference_step_{p}"] = float(reference_step[d])
    return row
