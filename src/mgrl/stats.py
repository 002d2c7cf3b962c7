"""Statistics of the pipeline in one place: intervals, estimator statistics, verdict rules.

Pure numpy/scipy functions, no file IO and no JAX; ``probe`` (per-state estimator statistics and
their bootstraps) and ``analysis`` (tables, claims) call them.

Intervals respect the range of their quantity:

* means of unbounded quantities (returns, differences, the debiased squared bias): Student-t,
  :func:`mean_ci`;
* positive quantities (variances, SNR, relative errors, ratios of them): t-interval of the mean
  log, exponentiated (:func:`log_mean_ci`, a geometric mean whose CI stays positive);
* quantities in (0, 1) (gamma, lambda): t-interval of the mean logit, mapped back with the sigmoid
  (:func:`logit_mean_ci`);
* quantities in [-1, 1] (cosines): t-interval of the mean atanh, mapped back with tanh
  (:func:`atanh_mean_ci`, stays inside (-1, 1));
* statistics of M samples from one state: percentile bootstrap over the samples
  (:func:`bootstrap_intervals`), inside the statistic's range by construction.

Verdicts (:func:`verdict` of a :class:`VerdictRule`: :func:`directional_rule`,
:func:`non_inferiority_rule`, :func:`harm_rule`) are three-valued: ``holds``, ``contradicted`` or ``inconclusive``; a CI too wide to exclude the null
(or the margin) is always ``inconclusive``, never ``holds``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
from scipy import special as _special  # stdtrit: the t quantile, without scipy.stats' 0.8 s import

CONFIDENCE_LEVEL = 0.95
HOLDS, CONTRADICTED, INCONCLUSIVE = "holds", "contradicted", "inconclusive"
_COSINE_CLIP = 1.0 - 1e-12  # atanh(+-1) is infinite: a mean cosine of exactly +-1 is clipped


# ----------------------------------------------------------------------------------- intervals --


def _finite(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=float).reshape(-1)
    return x[np.isfinite(x)]


def mean_ci(values: Sequence[float], level: float = CONFIDENCE_LEVEL) -> tuple[float, float, float, int]:
    """Mean and Student-t CI of the finite ``values`` [n]: (mean, lo, hi, n); NaN CI when n < 2.

    lo, hi = mean -+ t_{n-1, (1+level)/2} * sd / sqrt(n).
    """
    x = _finite(values)
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    m = float(np.mean(x))
    if n < 2:
        return m, np.nan, np.nan, n
    half = float(_special.stdtrit(n - 1, 0.5 + level / 2) * np.std(x, ddof=1) / np.sqrt(n))
    return m, m - half, m + half, n


def transformed_mean_ci(values: Sequence[float], forward: Callable, inverse: Callable,
                        level: float = CONFIDENCE_LEVEL) -> tuple[float, float, float, int]:
    """:func:`mean_ci` on ``forward(values)``, mapped back with ``inverse`` (monotone increasing)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m, lo, hi, n = mean_ci(forward(np.asarray(values, dtype=float)), level)
    return float(inverse(m)), float(inverse(lo)), float(inverse(hi)), n


def log_mean_ci(values: Sequence[float], level: float = CONFIDENCE_LEVEL) -> tuple[float, float, float, int]:
    """Geometric mean of the positive ``values`` and its CI (t-interval of the logs, exponentiated).

    Non-positive or non-finite values are dropped (their log is undefined). The CI is positive.
    """
    x = np.asarray(values, dtype=float).reshape(-1)
    x = x[np.isfinite(x) & (x > 0)]
    return transformed_mean_ci(x, np.log, np.exp, level)


log_ratio_ci = log_mean_ci  # a ratio's geometric mean over units: the same computation


def logit_mean_ci(values: Sequence[float], level: float = CONFIDENCE_LEVEL) -> tuple[float, float, float, int]:
    """Mean and CI of values in (0, 1) (gamma, lambda): t-interval of the mean logit, mapped back
    with the sigmoid, so the CI stays inside (0, 1). The point is sigmoid(mean logit): the mean of
    the meta-parameters as they are stored (logits), not the arithmetic mean of gamma."""
    x = np.clip(np.asarray(values, dtype=float).reshape(-1), 1e-12, 1.0 - 1e-12)
    return transformed_mean_ci(x, lambda v: np.log(v) - np.log1p(-v),
                               lambda v: 1.0 / (1.0 + np.exp(-v)), level)


def atanh_mean_ci(values: Sequence[float], level: float = CONFIDENCE_LEVEL) -> tuple[float, float, float, int]:
    """Centre and CI of values in [-1, 1] (cosines): t-interval of atanh(values), mapped by tanh.

    The centre is tanh(mean atanh(x)); lo and hi lie in (-1, 1) whatever the spread.
    """
    x = np.clip(_finite(values), -_COSINE_CLIP, _COSINE_CLIP)
    return transformed_mean_ci(x, np.arctanh, np.tanh, level)


def half_width(lo: float, hi: float) -> float:
    """Half the width of an interval (NaN if either end is NaN)."""
    return float((hi - lo) / 2.0)


def percentile_interval(resampled: np.ndarray, level: float = CONFIDENCE_LEVEL,
                        axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): the (1-level)/2 and (1+level)/2 quantiles of bootstrap replicates along ``axis``."""
    quantiles = 100.0 * np.array([(1.0 - level) / 2, (1.0 + level) / 2])
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanpercentile(resampled, quantiles, axis=axis)
    return lo, hi


def bootstrap_indices(n: int, num_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of ``num_resamples`` resamples with replacement of n units: [B, n]."""
    return rng.integers(0, n, size=(num_resamples, n))


# ------------------------------------------------------------------------ estimator statistics --


def estimator_statistics(
    samples: np.ndarray,
    reference: np.ndarray,
    reference_variance: np.ndarray | None = None,
    reference_count: int | None = None,
) -> dict[str, np.ndarray]:
    """Statistics of samples g_1..g_M [..., M, D] against a reference mean r [..., D] (broadcast).

    With x = mean_m g_m [..., D], s^2 the per-component unbiased variance [..., D], trace = sum_d s^2:

        cosine_to_reference = <x, r> / (||x|| ||r||)                    in [-1, 1]
        relative_error      = ||x - r|| / ||r||
        snr                 = ||x||^2 / trace                           (per-sample signal-to-noise)
        bias2_debiased      = ||x - r||^2 - trace / M - trace_ref / M_ref
        relative_bias2      = bias2_debiased / ||r||^2
        direction_variance  = sum_d Var_m[g_m / ||g_m||]_d                  in [0, M / (M - 1)]

    ``bias2_debiased`` is unbiased for ||E g - E g_ref||^2 when r is the mean of M_ref independent
    reference samples with per-component unbiased variance ``reference_variance`` [..., D]
    (``reference_count`` = M_ref): E||x - r||^2 = ||E g - E g_ref||^2 + tr Var g / M
    + tr Var g_ref / M_ref. Without a reference variance the reference is taken as exact. It can be
    negative (an unbiased estimate of a small non-negative number). ``relative_bias2`` divides by the
    plain ||r||^2, a per-state constant shared by every estimator, so it only sets the units.

    ``direction_variance`` is the trace of the unbiased variance of the unit vectors u_m = g_m /
    ||g_m|| (= M / (M - 1) (1 - ||mean u||^2)): 0 when every sample points the same way, ~1 when
    the directions are spread out. Like ``snr`` and ``cosine_to_reference`` it does not change when
    an estimator's gradients are rescaled, so it compares estimators of different losses (a BMG KL
    and a policy-gradient loss); ``variance_trace`` does not.

    Returns also ``mean`` and ``variance`` [..., D] and ``variance_trace`` [...]. A zero reference or
    zero variance gives NaN or inf, not an error.
    """
    samples = np.asarray(samples, np.float64)
    reference = np.asarray(reference, np.float64)
    num = samples.shape[-2]
    mean = samples.mean(axis=-2)
    variance = samples.var(axis=-2, ddof=1)
    trace = variance.sum(axis=-1)
    if reference_variance is None:
        reference_trace, reference_count = 0.0, 1
    else:
        reference_trace = np.asarray(reference_variance, np.float64).sum(axis=-1)
    mean_norm = np.linalg.norm(mean, axis=-1)
    reference_norm = np.linalg.norm(reference, axis=-1)
    squared_error = np.sum((mean - reference) ** 2, axis=-1)
    bias2 = squared_error - trace / num - reference_trace / reference_count
    with np.errstate(divide="ignore", invalid="ignore"):
        units = samples / np.linalg.norm(samples, axis=-1, keepdims=True)
        direction_variance = units.var(axis=-2, ddof=1).sum(axis=-1)
        cosine = np.sum(mean * reference, axis=-1) / (mean_norm * reference_norm)
        relative_error = np.sqrt(squared_error) / reference_norm
        snr = mean_norm**2 / trace
        relative_bias2 = bias2 / reference_norm**2
    return {"mean": mean, "variance": variance, "variance_trace": trace, "snr": snr,
            "cosine_to_reference": cosine, "relative_error": relative_error,
            "bias2_debiased": bias2, "relative_bias2": relative_bias2,
            "direction_variance": direction_variance}


def estimator_statistics_from_samples(samples: np.ndarray, reference_samples: np.ndarray) -> dict:
    """:func:`estimator_statistics` of samples [..., M, D] against reference samples [..., M_ref, D]
    (their mean, variance and count: the debiased bias corrects for the reference's noise)."""
    reference_samples = np.asarray(reference_samples, np.float64)
    m_ref = reference_samples.shape[-2]
    ref_var = (reference_samples.var(axis=-2, ddof=1) if m_ref > 1
               else np.zeros(reference_samples.shape[:-2] + reference_samples.shape[-1:]))
    return estimator_statistics(samples, reference_samples.mean(axis=-2), ref_var, m_ref)


def bootstrap_intervals(
    samples: np.ndarray,
    reference_samples: np.ndarray,
    num_resamples: int,
    rng: np.random.Generator,
    level: float = CONFIDENCE_LEVEL,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Percentile bootstrap CIs of every :func:`estimator_statistics_from_samples` output.

    Args:
      samples: [M, D] estimate samples; resampled with replacement, [B, M, D] in one go.
      reference_samples: [M_ref, D]; resampled independently, so the CIs include reference noise.
      num_resamples: B.
      rng: seeded numpy Generator (the only randomness).
      level: coverage of the intervals.

    Returns:
      name -> (lo, hi), each shaped like the statistic ([D] for mean and variance, else []). The
      cosine's ends lie in [-1, 1] and those of positive statistics are >= 0 (percentiles of values
      in that range).
    """
    samples = np.asarray(samples, np.float64)
    reference_samples = np.asarray(reference_samples, np.float64)
    rows = bootstrap_indices(samples.shape[0], num_resamples, rng)
    reference_rows = bootstrap_indices(reference_samples.shape[0], num_resamples, rng)
    resampled = estimator_statistics_from_samples(samples[rows], reference_samples[reference_rows])
    return {name: percentile_interval(values, level) for name, values in resampled.items()}


# ------------------------------------------------------------------------------------ verdicts --

@dataclasses.dataclass(frozen=True)
class VerdictRule:
    """A claim's decision rule on its CI [lo, hi] (lo <= hi): ``holds(lo, hi)`` and
    ``contradicted(lo, hi)``, never both true of one interval (each rule below is built so); neither
    is ``inconclusive``. ``text`` states the rule in words (the claims table's criterion)."""

    kind: str
    holds: Callable[[float, float], bool]
    contradicted: Callable[[float, float], bool]
    text: str


def directional_rule(null: float, claimed: str) -> VerdictRule:
    """Claim "the quantity is > null" (``claimed="greater"``) or "< null" (``"less"``): holds when
    the CI lies entirely on the claimed side of ``null``, contradicted when entirely on the other."""
    if claimed not in ("greater", "less"):
        raise ValueError(f"claimed must be 'greater' or 'less', got {claimed!r}")

    def above(lo, hi):
        return lo > null

    def below(lo, hi):
        return hi < null

    if claimed == "greater":
        return VerdictRule("directional", above, below,
                           f"holds: lower CI > {null:g}; contradicted: upper CI < {null:g}; "
                           f"else inconclusive")
    return VerdictRule("directional", below, above,
                       f"holds: upper CI < {null:g}; contradicted: lower CI > {null:g}; "
                       f"else inconclusive")


def non_inferiority_rule(margin: float) -> VerdictRule:
    """Claim "not lower by more than ``margin``" for a difference d = new - old: holds when
    lo > -margin (any shortfall is within the margin), contradicted when hi < -margin (the shortfall
    exceeds it). A CI reaching below -margin and above it decides nothing, however close its centre
    is to 0; an undefined (non-finite) margin decides nothing."""
    defined = bool(np.isfinite(margin))
    return VerdictRule("non-inferiority", lambda lo, hi: defined and lo > -margin,
                       lambda lo, hi: defined and hi < -margin,
                       "holds: lower CI > -delta; contradicted: upper CI < -delta; else inconclusive")


def harm_rule(margin: float) -> VerdictRule:
    """Claim "the change hinders performance by more than ``margin``" for a difference d = changed -
    unchanged: holds when hi < -margin (worse by more than the margin), contradicted when
    lo > -margin (any harm is smaller than the margin: negligible, even if significantly below 0),
    inconclusive when the CI contains -margin. An undefined (non-finite) margin decides nothing."""
    defined = bool(np.isfinite(margin))
    return VerdictRule("harm", lambda lo, hi: defined and hi < -margin,
                       lambda lo, hi: defined and lo > -margin,
                       "holds: upper CI < -delta (harm larger than the margin); contradicted: lower "
                       "CI > -delta (any harm smaller than the margin); else inconclusive")


def verdict(rule: VerdictRule, lo: float, hi: float) -> str:
    """``holds``, ``contradicted`` or ``inconclusive``: the outcome of ``rule`` on the CI [lo, hi].

    An interval with a NaN or infinite end is inconclusive. Raises ValueError when lo > hi, or when
    the rule would both hold and be contradicted (a broken rule: the outcomes must be exclusive).
    """
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if lo > hi:
        raise ValueError(f"not an interval: lo {lo!r} > hi {hi!r}")
    holds, contradicted = bool(rule.holds(lo, hi)), bool(rule.contradicted(lo, hi))
    if holds and contradicted:
        raise ValueError(f"{rule.kind} rule both holds and is contradicted on [{lo!r}, {hi!r}]: "
                         f"{rule.text}")
    return HOLDS if holds else CONTRADICTED if contradicted else INCONCLUSIVE
