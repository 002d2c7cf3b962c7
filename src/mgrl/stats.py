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
  (:func:`atanh_mean_ci`, stays inside (-1, 1)); differences of two cosines, in [-2, 2], the same
  on their half (:func:`cosine_difference_ci`);
* statistics of M samples from one state: percentile bootstrap over the samples
  (:func:`bootstrap_intervals`), inside the statistic's range by construction.

Verdicts (:func:`verdict` of a :class:`VerdictRule`: :func:`directional_rule`,
:func:`non_inferiority_rule`, :func:`harm_rule`, :func:`gain_rule`) are three-valued: ``holds``, ``contradicted`` or ``inconclusive``; a CI too wide to exclude the null
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


def welch_difference_ci(a: Sequence[float], b: Sequence[float], level: float = CONFIDENCE_LEVEL
                        ) -> tuple[float, float, float]:
    """Difference of means of two independent samples and its Welch t-interval: (d, lo, hi).

    d = mean(a) - mean(b), se^2 = s_a^2/n_a + s_b^2/n_b, lo, hi = d -+ t_{nu, (1+level)/2} se with
    the Welch-Satterthwaite nu = se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1)); NaN CI when
    either sample has fewer than 2 finite values, and a zero-width CI when both have no spread.
    """
    x, y = _finite(a), _finite(b)
    if len(x) == 0 or len(y) == 0:
        return np.nan, np.nan, np.nan
    d = float(np.mean(x) - np.mean(y))
    if len(x) < 2 or len(y) < 2:
        return d, np.nan, np.nan
    va, vb = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)
    se2 = va + vb
    if se2 == 0:
        return d, d, d
    nu = se2 ** 2 / (va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1))
    half = float(_special.stdtrit(nu, 0.5 + level / 2) * np.sqrt(se2))
    return d, d - half, d + half


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


def cosine_difference_ci(values: Sequence[float], level: float = CONFIDENCE_LEVEL
                         ) -> tuple[float, float, float, int]:
    """Centre and CI of differences of two cosines (in [-2, 2]): :func:`atanh_mean_ci` of the
    halves, doubled, so the CI stays inside (-2, 2); the centre has the sign of the typical
    difference (it is 2 tanh(mean atanh(d / 2)), close to the mean for |d| well inside 2)."""
    c, lo, hi, n = atanh_mean_ci(np.asarray(values, dtype=float) / 2.0, level)
    return 2.0 * c, 2.0 * lo, 2.0 * hi, n


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


# ------------------------------------------------------------------------ estimator statistics --


def normalised_step(samples: np.ndarray) -> np.ndarray:
    """Adam's expected step direction of an estimator, per component: a_d = mean_m g_md /
    sqrt(mean_m g_md^2) [..., D] from samples [..., M, D].

    Adam divides each component's running mean by the root of its running mean square, so with
    gradients g drawn from one state its step tends to E g_d / sqrt(E g_d^2) = mu_d / sqrt(mu_d^2 +
    sigma_d^2), in [-1, 1]: the scale of g cancels (a policy-gradient loss and a KL compare), and
    a component's step shrinks towards 0 as its noise grows. Divides by a root mean square, never
    by a mean (it is >= |mean|; 0 only if every sample is 0, which gives NaN).
    """
    samples = np.asarray(samples, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return samples.mean(axis=-2) / np.sqrt(np.mean(samples**2, axis=-2))


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a, b) along the last axis, clipped to [-1, 1] (rounding can leave it by 1 ulp)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.clip(cosine, -1.0, 1.0)


def estimator_statistics(
    samples: np.ndarray,
    reference_samples: np.ndarray,
    shared: int = 0,
) -> dict[str, np.ndarray]:
    """Statistics of samples g_1..g_M [..., M, D] against reference samples r_1..r_Mref [..., M_ref, D].

    The first ``shared`` = c rows of both come from the same keys (one forward pass gives g_i and
    r_i, :mod:`mgrl.probe`), so they are paired; the other rows are independent. With x = mean_m g_m
    [..., D], rbar = mean r, s^2 the per-component unbiased variance, trace = sum_d s^2 and a(.) =
    :func:`normalised_step`:

        step_cosine         = cos(a(g), a(r))                           in [-1, 1]
        cosine_to_reference = cos(x, rbar)                               in [-1, 1]
        snr                 = ||x||^2 / trace                            (per-sample signal-to-noise)
        bias2_debiased      = ||x - rbar||^2 - tr V,   V = Var g / M + Var r / M_ref
                                                        - 2 c Cov_c(g, r) / (M M_ref)
        direction_variance  = sum_d Var_m[g_m / ||g_m||]_d                  in [0, M / (M - 1)]

    ``step_cosine`` is the angle between the expected Adam steps of the estimator and of the
    reference: scale-free per component (the gamma component of a raw mean can be 100x the lambda
    one, making the raw cosine the sign of the gamma component) and with no division by a noisy
    mean. It is consistent (a plug-in of means of M samples) and tends to shrink towards 0 at small
    M; ``tests/test_stats.py`` checks its consistency and its bootstrap coverage.

    ``bias2_debiased`` is unbiased for ||E g - E r||^2 (E||x - rbar||^2 = ||E g - E r||^2 + tr V;
    Cov_c is the unbiased covariance over the c paired rows); it can be < 0, and it is in the
    estimators' raw units, so it mostly measures their scale. With M_ref = 1 the reference is
    taken as exact (no variance). ``direction_variance`` is the trace of the unbiased variance of
    the unit vectors g_m / ||g_m|| (= M / (M - 1) (1 - ||mean u||^2)): 0 when every sample points
    the same way, ~1 when spread out; scale-free like ``snr`` and both cosines.

    Returns also ``mean``, ``variance`` and ``step`` (a(g)) [..., D], ``variance_trace`` [...].
    Leading axes are independent problems. Degenerate inputs give NaN or inf, not an error.
    """
    samples = np.asarray(samples, np.float64)
    reference_samples = np.asarray(reference_samples, np.float64)
    num, num_ref = samples.shape[-2], reference_samples.shape[-2]
    if not 0 <= shared <= min(num, num_ref):
        raise ValueError(f"shared = {shared} rows, but M = {num} and M_ref = {num_ref}")
    mean = samples.mean(axis=-2)
    reference_mean = reference_samples.mean(axis=-2)
    variance = samples.var(axis=-2, ddof=1)
    trace = variance.sum(axis=-1)
    reference_trace = (reference_samples.var(axis=-2, ddof=1).sum(axis=-1) if num_ref > 1
                       else np.zeros(trace.shape))
    noise = trace / num + reference_trace / num_ref
    if shared > 1:
        g, r = samples[..., :shared, :], reference_samples[..., :shared, :]
        covariance = np.sum((g - g.mean(axis=-2, keepdims=True))
                            * (r - r.mean(axis=-2, keepdims=True)), axis=(-2, -1)) / (shared - 1)
        noise = noise - 2.0 * shared * covariance / (num * num_ref)
    bias2 = np.sum((mean - reference_mean) ** 2, axis=-1) - noise
    step = normalised_step(samples)
    with np.errstate(divide="ignore", invalid="ignore"):
        units = samples / np.linalg.norm(samples, axis=-1, keepdims=True)
        direction_variance = units.var(axis=-2, ddof=1).sum(axis=-1)
        snr = np.sum(mean**2, axis=-1) / trace
    return {"mean": mean, "variance": variance, "step": step, "variance_trace": trace, "snr": snr,
            "step_cosine": _cosine(step, normalised_step(reference_samples)),
            "cosine_to_reference": _cosine(mean, reference_mean),
            "bias2_debiased": bias2, "direction_variance": direction_variance}


def debiased_alignment(truth: np.ndarray, truth_variance: np.ndarray, samples: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Alignment of an estimator's expectation with a truth over J probed states, noise removed.

    truth x_hat [..., J]: an estimate of the true meta-gradient (one learned meta-parameter) at
    each state, independent of the samples; truth_variance v [..., J]: its variance (0 for an exact
    truth); samples g [..., J, M]: the estimator's samples at each state. With gbar_j = mean_m g_jm
    and s2_j their unbiased per-sample variance:

        rho   = sum_j x_hat_j gbar_j / sqrt((sum_j x_hat_j^2 - sum_j v_j) (sum_j gbar_j^2 - sum_j s2_j / M))
        slope = sum_j x_hat_j gbar_j / (sum_j x_hat_j^2 - sum_j v_j)

    The numerator and the two brackets are unbiased for sum_j x_j mu_j, sum_j x_j^2 and sum_j
    mu_j^2 (mu_j = E g_j), so rho is consistent for the cosine, across states, between E g and the
    truth: 1 when E g is a positive multiple of the truth at every state, whatever that multiple
    (Adam divides a common scale out) and whatever the estimator's noise, which is subtracted, not
    divided by; ``slope`` estimates the multiple. It can leave [-1, 1] by noise. A bracket <= 0
    (noise as large as the signal) gives NaN: the regime where it is valid is a relative SD of the
    estimator's bracket, sqrt((4 / q + 2 / q^2) / J) with q = M x SNR (SNR = mu^2 / sigma^2 per
    sample), well below 1 (:func:`alignment_bracket_rsd`). Returns (rho, slope) [...].
    """
    truth = np.asarray(truth, np.float64)
    truth_variance = np.broadcast_to(np.asarray(truth_variance, np.float64), truth.shape)
    samples = np.asarray(samples, np.float64)
    num = samples.shape[-1]
    mean = samples.mean(axis=-1)
    cross = np.sum(truth * mean, axis=-1)
    truth_bracket = np.sum(truth**2, axis=-1) - np.sum(truth_variance, axis=-1)
    estimator_bracket = (np.sum(mean**2, axis=-1)
                         - np.sum(samples.var(axis=-1, ddof=1), axis=-1) / num)
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = (truth_bracket > 0) & (estimator_bracket > 0)
        rho = np.where(valid, cross / np.sqrt(np.abs(truth_bracket * estimator_bracket)), np.nan)
        slope = np.where(truth_bracket > 0, cross / truth_bracket, np.nan)
    return rho, slope


def alignment_bracket_rsd(samples_per_state: int, snr: float, states: int) -> float:
    """Relative SD of :func:`debiased_alignment`'s estimator bracket sum_j (gbar_j^2 - s2_j / M)
    for Gaussian noise with per-sample SNR mu^2 / sigma^2 = ``snr`` at each of J ``states``:
    sqrt((4 / q + 2 / q^2) / J), q = M x SNR (Var[gbar^2] = 4 mu^2 sigma^2 / M + 2 sigma^4 / M^2).
    Near or above 1 the bracket is often <= 0 and the alignment undefined."""
    q = samples_per_state * snr
    return float(np.sqrt((4.0 / q + 2.0 / q**2) / states))


def paired_bootstrap_indices(num: int, num_ref: int, shared: int, num_resamples: int,
                             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row indices [B, M] and [B, M_ref] of a bootstrap that keeps the first ``shared`` rows paired:
    the paired keys are resampled together (one draw gives row i of both), the unpaired rows of
    each side apart, so a resample has the design of the data (c paired rows, the rest not)."""
    paired = rng.integers(0, shared, size=(num_resamples, shared)) if shared else \
        np.zeros((num_resamples, 0), np.int64)

    def tail(n):
        return shared + rng.integers(0, n - shared, size=(num_resamples, n - shared))

    return (np.concatenate([paired, tail(num)], axis=1),
            np.concatenate([paired, tail(num_ref)], axis=1))


def bootstrap_intervals(
    samples: np.ndarray,
    reference_samples: np.ndarray,
    shared: int,
    num_resamples: int,
    rng: np.random.Generator,
    level: float = CONFIDENCE_LEVEL,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Percentile bootstrap CIs of every :func:`estimator_statistics` output.

    Args:
      samples: [M, D] estimate samples.
      reference_samples: [M_ref, D]; the first ``shared`` rows pair with those of ``samples``.
      shared: c, paired rows (resampled together, :func:`paired_bootstrap_indices`).
      num_resamples: B; the B resamples are evaluated in one batched call.
      rng: seeded numpy Generator (the only randomness).
      level: coverage of the intervals.

    Returns:
      name -> (lo, hi), each shaped like the statistic ([D] for mean, variance and step, else []).
      The cosines' ends lie in [-1, 1] and those of positive statistics are >= 0 (percentiles of
      values in that range).
    """
    samples = np.asarray(samples, np.float64)
    reference_samples = np.asarray(reference_samples, np.float64)
    rows, reference_rows = paired_bootstrap_indices(
        samples.shape[0], reference_samples.shape[0], shared, num_resamples, rng)
    resampled = estimator_statistics(samples[rows], reference_samples[reference_rows], shared)
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


def gain_rule(margin: float) -> VerdictRule:
    """Claim "the change improves performance by more than ``margin``" for a difference d =
    changed - unchanged: holds when lo > margin, contradicted when hi < margin (any gain is smaller
    than the margin: negligible, even if significantly above 0), inconclusive when the CI contains
    the margin. The mirror of :func:`harm_rule`. An undefined (non-finite) margin decides nothing."""
    defined = bool(np.isfinite(margin))
    return VerdictRule("gain", lambda lo, hi: defined and lo > margin,
                       lambda lo, hi: defined and hi < margin,
                       "holds: lower CI > delta (gain larger than the margin); contradicted: upper "
                       "CI < delta (any gain smaller than the margin); else inconclusive")


def reproduction_rule(margin: float) -> VerdictRule:
    """Claim "ours reproduces theirs" for a difference d = ours - theirs: holds (``reproduced``)
    when the CI contains 0 and lies inside [-margin, margin], contradicted (``differs``) when it
    lies entirely beyond the margin (lo > margin or hi < -margin: a difference larger than the
    margin), inconclusive otherwise (a CI reaching past the margin, or a difference that is real
    but within the margin). An undefined (non-finite) margin decides nothing."""
    defined = bool(np.isfinite(margin))
    return VerdictRule("reproduction",
                       lambda lo, hi: defined and -margin <= lo <= 0 <= hi <= margin,
                       lambda lo, hi: defined and (lo > margin or hi < -margin),
                       "reproduced: 0 in CI and CI inside [-m, m]; differs: CI beyond m or below "
                       "-m; else inconclusive")


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
