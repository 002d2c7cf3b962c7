"""mgrl.stats and the claims built on it, on synthetic data with known answers (numpy only, no JAX)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from mgrl import analysis, stats
from mgrl.claim_support import claimed_schemes
from mgrl.config import ConfigError, load_config, config_from_dict
from mgrl.runs import (averaged_schemes, claim_roles, extra_estimators, meta_samples_of,
                       mixing_schemes, run_config, scheme_aliases, scheme_of,
                       sensitivity_gamma)

# ------------------------------------------------------------------------------------ intervals --


def test_mean_ci_by_hand_and_with_too_few_values():
    m, lo, hi, n = stats.mean_ci([1.0, 2.0, 3.0, np.nan])
    half = scipy_stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert (m, n) == (2.0, 3) and lo == pytest.approx(2 - half) and hi == pytest.approx(2 + half)
    m, lo, hi, n = stats.mean_ci([5.0])
    assert m == 5.0 and n == 1 and np.isnan(lo) and np.isnan(hi)


def test_positive_quantities_get_positive_intervals():
    values = [0.01, 1.0, 100.0]  # a t-interval of these reaches far below 0
    assert stats.mean_ci(values)[1] < 0
    g, lo, hi, n = stats.log_mean_ci(values)
    assert g == pytest.approx(1.0) and 0 < lo < 1 < hi and n == 3
    # exp of the t-interval of the logs
    _, llo, lhi, _ = stats.mean_ci(np.log(values))
    assert (lo, hi) == pytest.approx((np.exp(llo), np.exp(lhi)))


def test_cosine_intervals_stay_within_minus_one_and_one():
    values = [1.0, -1.0, 1.0, 0.9]  # what a 1-d cosine gives; a t-interval leaves [-1, 1]
    _, tlo, thi, _ = stats.mean_ci(values)
    assert tlo < -1 or thi > 1
    c, lo, hi, n = stats.atanh_mean_ci(values)
    assert -1 <= lo <= c <= hi <= 1 and n == 4
    c, lo, hi, _ = stats.atanh_mean_ci([0.2, 0.3, 0.25])
    assert -1 < lo < 0.25 < hi < 1


def test_bootstrap_cosine_and_positive_statistics_stay_in_range():
    rng = np.random.default_rng(0)
    # Mean near zero against the reference: the cosine of a resample swings over all of [-1, 1].
    x = rng.normal([0.01, -0.02], 1.0, size=(16, 2))
    ref = rng.normal([0.5, 0.5], 1.0, size=(8, 2))
    ci = stats.bootstrap_intervals(x, ref, 0, 500, rng)
    lo, hi = ci["cosine_to_reference"]
    assert -1 <= lo < 0 < hi <= 1
    lo, hi = ci["step_cosine"]
    assert -1 <= lo < hi <= 1
    for name in ("variance_trace", "snr"):
        assert ci[name][0] >= 0, name
    assert ci["bias2_debiased"][0] < ci["bias2_debiased"][1]


# ------------------------------------------------------------------------- the debiased bias --


def test_debiased_squared_bias_is_unbiased_and_the_plain_one_is_not():
    rng = np.random.default_rng(7)
    draws, m, m_ref = 20_000, 8, 6
    mu, mu_ref = np.array([1.0, -0.5]), np.array([1.3, -0.1])
    sd, sd_ref = np.array([2.0, 1.0]), np.array([1.5, 0.5])
    truth = float(np.sum((mu - mu_ref) ** 2))  # 0.25
    x = mu + sd * rng.standard_normal((draws, m, 2))
    ref = mu_ref + sd_ref * rng.standard_normal((draws, m_ref, 2))
    s = stats.estimator_statistics(x, ref)  # one problem per draw (batch axis)
    debiased = s["bias2_debiased"]
    plain = np.sum((x.mean(1) - ref.mean(1)) ** 2, axis=-1)
    se = debiased.std(ddof=1) / np.sqrt(draws)
    assert abs(debiased.mean() - truth) < 3 * se, (debiased.mean(), truth, se)
    # The plain estimator is off by tr Var/M + tr Var_ref/M_ref (= 0.625 + 0.417 here): >> its SE.
    excess = np.sum(sd**2) / m + np.sum(sd_ref**2) / m_ref
    assert plain.mean() - truth == pytest.approx(excess, rel=0.05)
    assert plain.mean() - truth > 20 * plain.std(ddof=1) / np.sqrt(draws)


def test_debiased_squared_bias_stays_unbiased_with_paired_keys():
    """Paired samples (the first c keys give both g_i and r_i, correlated): the covariance term
    keeps the estimate unbiased; ignoring the pairing would not."""
    rng = np.random.default_rng(8)
    draws, m, m_ref, shared = 20_000, 8, 6, 4
    mu, mu_ref = np.array([1.0, -0.5]), np.array([1.3, -0.1])
    truth = float(np.sum((mu - mu_ref) ** 2))
    common = rng.standard_normal((draws, m, 2))
    x = mu + 2.0 * common
    ref = mu_ref + rng.standard_normal((draws, m_ref, 2))
    ref[:, :shared] = mu_ref + 0.9 * common[:, :shared] + 0.3 * rng.standard_normal((draws, shared, 2))
    paired = stats.estimator_statistics(x, ref, shared)["bias2_debiased"]
    unpaired = stats.estimator_statistics(x, ref, 0)["bias2_debiased"]
    se = paired.std(ddof=1) / np.sqrt(draws)
    assert abs(paired.mean() - truth) < 3 * se, (paired.mean(), truth, se)
    assert unpaired.mean() - truth < -20 * se  # the positive covariance, subtracted as if absent


def test_estimator_statistics_without_reference_variance_treat_the_reference_as_exact():
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    s = stats.estimator_statistics(x, np.array([[2.0, 2.0]]))
    assert s["bias2_debiased"] == pytest.approx(10.0 - 17.0 / 3)


# ------------------------------------------------------------------------ the step cosine (C1) --


def gaussian_truth_step_cosine(mu, sd, mu_ref, sd_ref):
    """cos(a, a_ref) with a = mu / sqrt(mu^2 + sd^2) per component: the step cosine's population value."""
    a, b = mu / np.sqrt(mu**2 + sd**2), mu_ref / np.sqrt(mu_ref**2 + sd_ref**2)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# The meta-gradient's shape on Snake: lambda's component ~100x smaller than gamma's, noise >> mean.
MU, SD = np.array([3e-4, -2e-6]), np.array([6e-4, 5e-6])
MU_REF, SD_REF = np.array([2e-3, 1e-6]), np.array([6e-3, 8e-6])


def paired_draws(rng, num, shared=None, rho=0.3):
    """Samples [.., M, 2] and reference samples [.., M, 2]; rows correlated by rho (paired keys)."""
    z = rng.standard_normal((num, 2)) if not isinstance(num, tuple) else rng.standard_normal(num + (2,))
    w = rng.standard_normal(z.shape)
    return MU + SD * z, MU_REF + SD_REF * (rho * z + np.sqrt(1 - rho**2) * w)


def test_step_cosine_is_consistent_and_scale_free():
    truth = gaussian_truth_step_cosine(MU, SD, MU_REF, SD_REF)
    assert 0.2 < truth < 0.9  # not at a boundary: the raw cosine is ~1, the sign of gamma's part
    rng = np.random.default_rng(5)
    errors = []
    for num in (64, 1024, 16384):
        x, ref = paired_draws(rng, (50, num))
        s = stats.estimator_statistics(x, ref, num)
        errors.append(float(np.sqrt(np.mean((s["step_cosine"] - truth) ** 2))))
        assert np.all(s["cosine_to_reference"] > 0.99)  # the raw cosine sees gamma's sign only
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.02, errors
    # Same value for any scale of either component.
    x, ref = paired_draws(rng, 256)
    base = stats.estimator_statistics(x, ref, 256)["step_cosine"]
    scaled = stats.estimator_statistics(x * [10.0, 1e4], ref * [10.0, 1e4], 256)["step_cosine"]
    assert scaled == pytest.approx(base, rel=1e-10)


def test_step_cosine_bootstrap_interval_covers_the_truth_about_95_percent():
    """Repeated draws at the default M = M_ref = 128 with paired keys: the percentile bootstrap
    CI (400 resamples, paired) covers the population step cosine in ~95% of draws."""
    truth = gaussian_truth_step_cosine(MU, SD, MU_REF, SD_REF)
    rng = np.random.default_rng(6)
    repeats, hits = 200, 0
    for _ in range(repeats):
        x, ref = paired_draws(rng, 128)
        lo, hi = stats.bootstrap_intervals(x, ref, 128, 400, rng)["step_cosine"]
        assert -1 <= lo <= hi <= 1
        hits += lo <= truth <= hi
    assert 0.91 <= hits / repeats <= 0.99, hits / repeats


# The debiased alignment with a truth (stats.debiased_alignment): J states per seed, one learned
# meta-parameter; the estimator's mean is c x + bias, its per-sample SNR mu^2 / sigma^2 0.07 at
# K = 1 (the default's probes) and 10x lower at K = 4; the truth is estimated with a 10% error.
ALIGN_STATES, ALIGN_SNR, ALIGN_BIAS = 16, {1: 0.07, 4: 0.007}, {1: 0.8, 4: 0.3}


def alignment_seeds(rng, seeds: int, samples: int, noise: bool = True) -> dict[int, np.ndarray]:
    """rho_K [seeds] per K of seeds drawn independently (their own states, as training runs are);
    without noise the population cosine between E g_K and the truth over each seed's states."""
    x = rng.normal(size=(seeds, ALIGN_STATES))
    truth_variance = (0.1 * np.abs(x) + 0.05) ** 2
    truth = x + np.sqrt(truth_variance) * rng.normal(size=x.shape) if noise else x
    out = {}
    for horizon in (1, 4):
        mu = 0.5 * x + 0.5 * ALIGN_BIAS[horizon] * rng.normal(size=x.shape)
        if not noise:
            out[horizon] = np.sum(x * mu, -1) / np.sqrt(np.sum(x**2, -1) * np.sum(mu**2, -1))
            continue
        sigma = np.sqrt(np.mean(mu**2, -1, keepdims=True) / ALIGN_SNR[horizon])
        draws = mu[..., None] + sigma[..., None] * rng.normal(size=(*x.shape, samples))
        out[horizon] = stats.debiased_alignment(truth, truth_variance, draws)[0]
    return out


def test_debiased_alignment_is_the_cosine_and_the_multiple_without_noise():
    x = np.array([1.0, -2.0, 0.5, 3.0])
    for c in (0.01, 1.0, 250.0):  # any positive multiple of the truth: rho 1, slope c
        rho, slope = stats.debiased_alignment(x, 0.0, np.repeat((c * x)[:, None], 3, axis=1))
        assert rho == pytest.approx(1.0, abs=1e-12) and slope == pytest.approx(c, rel=1e-12)
    rho, _ = stats.debiased_alignment(x, 0.0, np.repeat((-2 * x)[:, None], 3, axis=1))
    assert rho == pytest.approx(-1.0, abs=1e-12)
    mu = np.array([0.3, 1.0, -1.0, 2.0])
    rho, _ = stats.debiased_alignment(x, np.zeros(4), np.repeat(mu[:, None], 5, axis=1))
    assert rho == pytest.approx(x @ mu / np.linalg.norm(x) / np.linalg.norm(mu), abs=1e-12)
    noisy = np.zeros((4, 8))
    noisy[:, ::2], noisy[:, 1::2] = 1.0, -1.0  # mean 0, all noise: the bracket is < 0
    assert np.isnan(stats.debiased_alignment(x, 0.0, noisy)[0])


def test_debiased_alignment_brackets_are_unbiased_and_noise_growing_with_k_moves_nothing():
    """The issue's example: every K with the same mean (no bias), the noise 6.4x larger at K = 4
    (M = 256, 32 states: q = M x SNR = 3 at K = 4). Over 400 draws the estimator's bracket is
    unbiased for sum mu^2, and the debiased alignment's K = 4 - K = 1 difference stays within
    0.02 of 0 (a tenth of the 0.2 rise C1 is sized for; what remains is the ratio's second-order
    bias, ~0.007 here), while the plug-in cosine (no noise removed) falls by 0.1: it measures
    the noise."""
    rng = np.random.default_rng(3)
    draws, states, samples = 400, 32, 256
    x = rng.normal(size=states)
    mu = 0.7 * x
    rho, plug_in = {}, {}
    for horizon, sigma in ((1, 1.0), (4, 6.4)):
        g = mu[:, None] + sigma * rng.normal(size=(draws, states, samples))
        rho[horizon] = stats.debiased_alignment(x, 0.0, g)[0]
        means = g.mean(-1)
        plug_in[horizon] = means @ x / np.linalg.norm(means, axis=-1) / np.linalg.norm(x)
        bracket = np.sum(means**2, -1) - np.sum(g.var(-1, ddof=1), -1) / samples
        se = bracket.std(ddof=1) / np.sqrt(draws)
        assert abs(bracket.mean() - mu @ mu) < 4 * se, horizon  # unbiased for sum mu^2
    drift = rho[4] - rho[1]
    assert np.all(np.isfinite(drift)) and abs(drift.mean()) < 0.02, drift.mean()
    assert (plug_in[4] - plug_in[1]).mean() < -0.05


def test_debiased_alignment_difference_interval_covers_the_truth_about_95_percent():
    """C1 by the alignment: rho_4 - rho_1 per seed (5 seeds, each its own 16 states), Student-t
    over seeds, at the probes' SNR with M = 1024 samples per state (q = M x SNR = 72 at K = 1 and
    7.2 at K = 4: bracket RSD 0.06 and 0.2). The target is the mean over seeds of the population
    difference (100,000 noise-free seeds); the CI covers it in 91-99% of 200 draws."""
    rng = np.random.default_rng(8)
    population = alignment_seeds(rng, 100_000, 0, noise=False)
    truth = float(np.mean(population[4] - population[1]))
    assert truth > 0.1  # the K = 4 estimator is less biased here: an effect to find
    assert stats.alignment_bracket_rsd(1024, ALIGN_SNR[4], ALIGN_STATES) < 0.25
    hits, repeats = 0, 200
    for _ in range(repeats):
        rho = alignment_seeds(rng, 5, 1024)
        difference = rho[4] - rho[1]
        assert np.all(np.isfinite(difference))
        _, lo, hi, _ = stats.mean_ci(difference)
        hits += lo <= truth <= hi
    assert 0.91 <= hits / repeats <= 0.99, hits / repeats


def test_cosine_difference_interval_stays_within_its_range():
    values = [1.9, -1.9, 1.95, 0.0]  # differences of cosines; a t-interval leaves [-2, 2]
    _, tlo, thi, _ = stats.mean_ci(values)
    assert tlo < -2 or thi > 2
    c, lo, hi, n = stats.cosine_difference_ci(values)
    assert -2 < lo <= c <= hi < 2 and n == 4
    c, lo, hi, _ = stats.cosine_difference_ci([0.2, 0.21, 0.19, 0.2])
    assert c == pytest.approx(0.2, abs=1e-3) and 0 < lo < c < hi


# ------------------------------------------------------------------------------------ verdicts --


@pytest.mark.parametrize("lo, hi, claimed, expected", [
    (1.5, 3.0, "greater", "holds"), (0.2, 0.8, "greater", "contradicted"),
    (0.5, 5.0, "greater", "inconclusive"), (0.01, 100.0, "greater", "inconclusive"),  # wide
    (0.2, 0.8, "less", "holds"), (1.5, 3.0, "less", "contradicted"),
    (np.nan, np.nan, "greater", "inconclusive"),
])
def test_directional_verdict(lo, hi, claimed, expected):
    assert stats.verdict(stats.directional_rule(1.0, claimed), lo, hi) == expected


@pytest.mark.parametrize("lo, hi, expected", [
    (-0.4, 0.3, "holds"), (-2.0, -0.6, "contradicted"), (-0.7, 0.1, "inconclusive"),
    (-50.0, 50.0, "inconclusive"), (np.nan, np.nan, "inconclusive"),
])
def test_equivalence_verdict(lo, hi, expected):
    assert stats.verdict(stats.non_inferiority_rule(0.5), lo, hi) == expected


@pytest.mark.parametrize("lo, hi, margin, expected", [
    (-2.0, -0.6, 0.5, "holds"),  # worse by more than the margin
    (-2.0, -0.1, 0.5, "inconclusive"),  # significantly worse, but maybe by less than the margin
    (-0.3, -0.1, 0.5, "contradicted"),  # significant but negligible harm
    (-0.54, -0.17, 0.74, "contradicted"),  # what the old rule called both holds and contradicted
    (-0.3, 0.4, 0.5, "contradicted"), (-0.9, 0.4, 0.5, "inconclusive"),
    (-50.0, 50.0, 0.5, "inconclusive"), (-2.0, -0.6, np.nan, "inconclusive"),  # no margin
])
def test_harm_verdict(lo, hi, margin, expected):
    assert stats.verdict(stats.harm_rule(margin), lo, hi) == expected


DELTA = 0.5


def boundary_grid(delta=DELTA):
    """Interval ends just below, at and above every boundary a claim rule uses (0, +-delta, 1),
    and far from them."""
    marks = (0.0, -delta, delta, 1.0)
    ends = {m + step for m in marks for step in (-1e-9, 0.0, 1e-9, -0.1, 0.1)}
    return sorted(ends | {-50.0, -1.0, 2.0, 50.0})


def grid_intervals(delta=DELTA):
    ends = boundary_grid(delta)
    pairs = [(lo, hi) for lo in ends for hi in ends if lo <= hi]  # includes degenerate lo == hi
    return pairs, [(np.nan, 0.0), (0.0, np.nan), (np.nan, np.nan), (-np.inf, 0.0), (0.0, np.inf)]


@pytest.mark.parametrize("claim", ["C1", "C2", "C3", "C4", "C5", "C5d", "E1", "E2", "C5'", "C1'"])
def test_every_claim_rule_gives_exactly_one_outcome_per_interval(claim):
    rule = analysis.claim_rules(DELTA)[claim]
    pairs, undefined = grid_intervals()
    seen = set()
    for lo, hi in pairs:
        holds, contradicted = rule.holds(lo, hi), rule.contradicted(lo, hi)
        assert not (holds and contradicted), (claim, lo, hi)
        outcome = stats.verdict(rule, lo, hi)
        assert outcome == ("holds" if holds else "contradicted" if contradicted else "inconclusive")
        seen.add(outcome)
    assert seen == {"holds", "contradicted", "inconclusive"}, claim  # the grid crosses every boundary
    for lo, hi in undefined:
        assert stats.verdict(rule, lo, hi) == "inconclusive", (claim, lo, hi)
    with pytest.raises(ValueError, match="not an interval"):
        stats.verdict(rule, 1.0, 0.0)


def test_an_overlapping_rule_is_refused_not_decided_by_the_order_of_checks():
    old_harm = stats.VerdictRule("harm", lambda lo, hi: hi < 0, lambda lo, hi: lo > -0.74, "old")
    with pytest.raises(ValueError, match="both holds and is contradicted"):
        stats.verdict(old_harm, -0.54, -0.17)
    assert stats.verdict(old_harm, -2.0, -1.0) == "holds"


def test_claims_table_decides_each_row_by_its_claims_rule():
    training, summary = synthetic()
    claims = analysis.claims_table(training, summary, ["last", "uniform"], ROLES,
                                   sensitivity=SENSITIVITY, margin_fraction=0.25)
    rules = analysis.claim_rules(0.25 * 2.0)
    for row in claims.itertuples():
        rule = rules[row.claim]
        assert row.criterion.endswith(rule.text), row.claim
        assert row.verdict == stats.verdict(rule, row.ci_lo, row.ci_hi), row.claim
    assert rules["C5"].kind == "harm" and rules["C4"].kind == "non-inferiority"


# ------------------------------------------------------------------- claims on synthetic tables --

SEEDS = (0, 1, 2, 3)
ROLES = {"k_step": "last", "mixing": "uniform"}  # mgrl.runs.claim_roles of schemes last and uniform
BASELINE_RETURN = 10.0  # a2c final return
# The fixed-gamma runs (sensitivity_table's fixed rows): gamma effect 12 - 10 = 2, delta = 0.25 x 2.
SENSITIVITY = pd.DataFrame({"kind": ["fixed", "fixed", "meta-learned"], "gamma": [0.1, 0.99, 0.5],
                            "final_return": [BASELINE_RETURN, 12.0, 30.0]})


def synthetic(c1=(0.2, 0.21, 0.19, 0.2), c2=(10, 11, 9, 10), c3=(3, 3.2, 2.9, 3.1),
              c4=(0.0, 0.1, -0.1, 0.05), c5=(-1.0, -1.1, -0.9, -1.0)):
    """Training and probe-summary frames whose per-seed claim measures are the given values.

    c1: step_cosine(last, K=4) - (last, K=1); c2: Var[last, 4] / Var[last, 1]; c3: Var[last, 4] /
    Var[uniform, 4]; c4: final return uniform - last at K=4; c5: last at K=4 - at K=1.
    """
    summary, training = [], []
    for i, seed in enumerate(SEEDS):
        for interval in (1, 2):
            scale = 1.0 + seed + interval  # states differ in scale; ratios do not
            cells = {(1, "last"): (scale, 0.3), (1, "uniform"): (scale, 0.3),
                     (4, "last"): (scale * c2[i], 0.3 + c1[i]),
                     (4, "uniform"): (scale * c2[i] / c3[i], 0.1)}
            for (horizon, scheme), (var, step_cosine) in cells.items():
                summary.append({"seed": seed, "interval": interval, "horizon": horizon,
                                "scheme": scheme, "variance_trace": var, "step_cosine": step_cosine,
                                "snr": 0.1, "cosine_to_reference": 0.5, "bias2_debiased": 1e-6,
                                "direction_variance": 0.5, "num_samples": 16,
                                "reference_horizon": 16})
        last4 = 12.0 + 0.3 * seed
        finals = {(1, "a2c"): BASELINE_RETURN, (1, "last"): last4 - c5[i], (4, "last"): last4,
                  (4, "uniform"): last4 + c4[i]}
        for (horizon, scheme), value in finals.items():
            for interval in range(1, 5):
                training.append({"seed": seed, "interval": interval, "horizon": horizon,
                                 "scheme": scheme, "train/episode_return": value,
                                 "train/reward_per_step": 0.1, "meta/gamma": 0.8,
                                 "env_steps": 100 * interval})
    return pd.DataFrame(training), pd.DataFrame(summary)


def verdicts(**measures):
    training, summary = synthetic(**measures)
    claims = analysis.claims_table(training, summary, ["last", "uniform"], ROLES,
                                   sensitivity=SENSITIVITY, margin_fraction=0.25)
    assert list(claims.columns) == list(analysis.CLAIM_COLUMNS)
    assert claims.unit.str.startswith("seeds (n=4").all()
    return dict(zip(claims.claim, claims.verdict)), claims.set_index("claim")


def test_every_claim_holds_on_clear_synthetic_data():
    v, claims = verdicts()  # C5: K = 4 ends 1.0 below K = 1, beyond delta = 0.5
    assert v == {"C1": "holds", "C2": "holds", "C3": "holds", "C4": "holds", "C5": "holds",
                 "C5d": "holds"}
    assert claims.loc["C5", "ci_hi"] < -0.5
    assert claims.loc["C2", "value"] == pytest.approx(np.exp(np.mean(np.log([10, 11, 9, 10]))))
    assert claims.loc["C1", "value"] == pytest.approx(0.2, abs=1e-3)
    assert "K_ref=16" in claims.loc["C1", "measure"]
    assert claims.loc["C4", "value"] == pytest.approx(0.0125)
    assert ("delta = 0.25 x gamma effect 2 = fixed-gamma a2c final return 12 at gamma 0.99 - 10 at "
            "gamma 0.1 = 0.5") in claims.loc["C4", "criterion"]
    assert "narrow enough" in claims.loc["C2", "power"]


def test_every_claim_is_contradicted_on_opposite_synthetic_data():
    v, _ = verdicts(c1=(-0.2, -0.21, -0.19, -0.2), c2=(0.1, 0.11, 0.09, 0.1), c3=(0.3, 0.32, 0.29, 0.31),
                    c4=(-1.0, -1.1, -0.9, -1.0), c5=(0.0, 0.1, -0.1, 0.05))
    assert v == {"C1": "contradicted", "C2": "contradicted", "C3": "contradicted",
                 "C4": "contradicted", "C5": "contradicted", "C5d": "inconclusive"}


def test_significant_but_negligible_harm_contradicts_c5_and_a_harm_near_delta_is_inconclusive():
    v, claims = verdicts(c5=(-0.2, -0.25, -0.15, -0.2))  # 0.2 below K = 1, well inside delta = 0.5
    assert claims.loc["C5", "ci_hi"] < 0 and claims.loc["C5", "ci_lo"] > -0.5  # significant
    assert v["C5"] == "contradicted"
    v, claims = verdicts(c5=(-0.5, -0.6, -0.4, -0.5))  # the CI contains -delta
    assert claims.loc["C5", "ci_hi"] < 0 and claims.loc["C5", "ci_lo"] < -0.5 < claims.loc["C5", "ci_hi"]
    assert v["C5"] == "inconclusive"


def test_wide_intervals_are_inconclusive_never_holds():
    # Centred on the claimed side, but the seeds disagree: the CI spans the null / the margin.
    v, claims = verdicts(c1=(0.6, -0.5, 0.6, -0.4), c2=(30, 0.2, 40, 0.3), c3=(20, 0.1, 30, 0.2),
                         c4=(3.0, -3.0, 2.5, -2.0), c5=(-4.0, 2.0, -3.0, 1.0))
    assert claims.loc["C2", "value"] > 1 and claims.loc["C1", "value"] > 0  # centre on the claim
    assert set(v.values()) == {"inconclusive"}, v
    assert "too wide" in claims.loc["C4", "power"] and "too wide" in claims.loc["C2", "power"]


def test_claims_skip_schemes_identical_to_last_and_use_aliases():
    training, summary = synthetic()
    same = summary[summary.scheme == "last"].assign(scheme="lambda_1")
    claims = analysis.claims_table(training, pd.concat([summary, same]),
                                   ["last", "uniform", "lambda_1"], ROLES,
                                   aliases={(1, "uniform"): "last", (1, "lambda_1"): "last",
                                            (4, "lambda_1"): "last"})
    assert not claims.statement.str.contains("lambda_1").any()  # one estimator, no claim about it


def claims_rows(verdicts_by_claim, value=1.0):
    return pd.DataFrame([{"claim": claim, "statement": f"statement {claim}", "measure": f"m{claim}",
                          "value": value, "ci_lo": value - 1, "ci_hi": value + 1, "n": 4,
                          "unit": "seeds", "verdict": verdict, "criterion": "", "power": ""}
                         for claim, verdict in verdicts_by_claim.items()])


def test_replication_table_says_whether_each_verdict_replicates():
    primary = claims_rows({"C1": "inconclusive", "C2": "holds", "C3": "holds", "C4": "contradicted",
                           "C5": "contradicted", "E1": "holds"})
    replicate = claims_rows({"C5": "contradicted", "C4": "contradicted", "C3": "inconclusive",
                             "C2": "contradicted", "C1": "inconclusive", "E2": "holds"}, value=2.0)
    table = analysis.replication_table(primary, replicate, seeds_a=(0, 1), seeds_b=(1000, 1001))
    got = dict(zip(table.claim, table.replicated))
    assert got == {"C1": "undecided",  # both inconclusive
                   "C2": "no", "C3": "no",  # opposite verdicts; decided vs inconclusive
                   "C4": "yes", "C5": "yes",  # the same decided verdict
                   "E1": "no", "E2": "no"}  # a row one seed set lacks
    assert list(table.claim) == ["C1", "C2", "C3", "C4", "C5", "E1", "E2"]  # the primary's order
    row = table.set_index("claim").loc["C4"]
    assert (row.value_seeds_a, row.value_seeds_b, row.ci_hi_seeds_b) == (1.0, 2.0, 3.0)
    assert (row.seeds_a, row.seeds_b) == ("0 1", "1000 1001")
    assert table.set_index("claim").loc["E2", "verdict_seeds_a"] == "missing"
    markdown = analysis.replication_markdown(table)
    assert "| C4 | statement C4 | mC4 | 1 | [0, 2] | **contradicted** | 2 | [1, 3] | **contradicted** | yes |" \
        in markdown
    assert "value (seeds 0 1)" in markdown and "value (seeds 1000 1001)" in markdown


def test_estimator_table_aggregates_per_seed_and_respects_ranges():
    _, summary = synthetic()
    summary.loc[summary.scheme == "uniform", "cosine_to_reference"] = [1.0, -1.0] * 8
    table = analysis.estimator_table(summary).set_index(["horizon", "scheme"])
    row = table.loc[(4, "last")]
    assert row.seeds == 4 and row.states == 8
    assert row.variance_trace_lo > 0 and row.snr_lo > 0
    cos = table.loc[(4, "uniform")]
    assert -1 <= cos.cosine_to_reference_lo <= cos.cosine_to_reference_hi <= 1
    # Per-seed geometric mean over the seed's states first: seed 0 has scales 2 and 3 -> sqrt(6) x 10.
    per_seed = analysis.seed_means(summary, "variance_trace", 4, "last", log=True)
    assert per_seed.loc[0] == pytest.approx(np.sqrt(6.0) * 10)


# --------------------------------------------------------------- aliases and the sensitivity sweep --


def test_identical_weights_are_one_estimator():
    cfg = config_from_dict({"seeds": [0], "horizons": [1, 2, 4],
                            "schemes": {"uniform": {"kind": "uniform"}, "last": {"kind": "last"},
                                        "lambda_0.5": {"kind": "lambda", "rho": 0.5},
                                        "lambda_1": {"kind": "lambda", "rho": 1.0}},
                            "probe": {"reference_horizon": 4}})
    assert scheme_aliases(cfg) == {
        (1, "uniform"): "last", (1, "lambda_0.5"): "last", (1, "lambda_1"): "last",
        (2, "lambda_0.5"): "uniform", (2, "lambda_1"): "last", (4, "lambda_1"): "last"}
    frame = pd.DataFrame({"horizon": [2, 2], "scheme": ["uniform", "last"], "x": [1.0, 2.0]})
    out = analysis.expand_aliases(frame, scheme_aliases(cfg))
    assert out[(out.horizon == 2) & (out.scheme == "lambda_0.5")].x.tolist() == [1.0]
    assert out[(out.horizon == 2) & (out.scheme == "lambda_1")].x.tolist() == [2.0]


def test_sensitivity_runs_are_the_baseline_at_a_fixed_gamma():
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[1] / "config.yaml")
    run = run_config(cfg, 1, "a2c_gamma0.95", (0,))
    assert run.agent.gamma_init == 0.95 and run.meta.learn == () and list(run.schemes) == ["last"]
    assert run_config(cfg, 1, "a2c", (0,)).agent.gamma_init == cfg.agent.gamma_init
    assert sensitivity_gamma("a2c_gamma0.5") == 0.5 and sensitivity_gamma("a2c_gamma1.5") is None
    training = pd.DataFrame([{"seed": s, "interval": i, "horizon": 1, "scheme": scheme,
                              "train/episode_return": ret + s, "train/reward_per_step": 0.1,
                              "meta/gamma": gamma, "env_steps": i}
                             for scheme, gamma, ret in (("a2c", 0.8000001, 5.0), ("last", 0.9, 6.0),
                                                        ("a2c_gamma0.95", 0.95, 7.0))
                             for s in (0, 1, 2) for i in (1, 2, 3, 4)])
    table = analysis.sensitivity_table(training[training.scheme != "a2c_gamma0.95"],
                                       training[training.scheme == "a2c_gamma0.95"])
    fixed = table[table.kind == "fixed"]
    assert fixed.gamma.tolist() == [0.8, 0.95] and fixed.final_return.tolist() == [6.0, 8.0]
    learned = table[table.kind == "meta-learned"].iloc[0]
    assert learned.gamma == pytest.approx(0.9) and learned.seeds == 3


def test_logit_interval_of_gammas_stays_inside_the_unit_interval():
    gammas = [0.96, 0.99, 0.44, 0.47, 0.86]  # a t-interval of these reaches 1.11
    assert stats.mean_ci(gammas)[2] > 1.0
    m, lo, hi, n = stats.logit_mean_ci(gammas)
    assert 0.0 < lo < m < hi < 1.0 and n == 5
    logits = np.log(np.array(gammas) / (1 - np.array(gammas)))
    assert m == pytest.approx(1 / (1 + np.exp(-logits.mean())))
    same = stats.logit_mean_ci([0.8] * 4)
    assert same[0] == pytest.approx(0.8) and same[1] == pytest.approx(0.8)


def test_extra_estimators_get_snr_and_return_rows_against_last_and_uniform_not_c3_c4():
    """A bmg scheme with 4x the SNR of last and 2x that of uniform on every state and a return 1.0
    below last: E1 holds against both, E2 is contradicted against last (a shortfall beyond delta =
    0.5); no C3/C4 row counts it as a mixing scheme."""
    training, summary = synthetic()
    snr = {"last": 0.1, "uniform": 0.2}
    summary["snr"] = [snr.get(s, 0.1) for s in summary.scheme]
    bmg = summary[(summary.horizon == 4) & (summary.scheme == "last")].assign(scheme="bmg", snr=0.4)
    finals = training[(training.horizon == 4) & (training.scheme == "last")].copy()
    finals["scheme"] = "bmg"
    finals["train/episode_return"] -= 1.0
    claims = analysis.claims_table(pd.concat([training, finals]), pd.concat([summary, bmg]),
                                   ["last", "uniform", "bmg"], ROLES, sensitivity=SENSITIVITY, margin_fraction=0.25,
                                   extra_estimators=["bmg"])
    assert not claims[claims.claim.isin(["C3", "C4"])].statement.str.contains("bmg").any()
    assert claims.claim.isin(["C3", "C4"]).sum() == 2  # uniform's rows are still there
    e1 = claims[claims.claim == "E1"].set_index("measure")
    assert e1.loc["SNR[bmg, K=4] / SNR[last, K=4]", "value"] == pytest.approx(4.0)
    assert e1.loc["SNR[bmg, K=4] / SNR[uniform, K=4]", "value"] == pytest.approx(2.0)
    assert set(e1.verdict) == {"holds"}
    e2 = claims[claims.claim == "E2"].set_index("measure")
    assert e2.loc["final return bmg - last at K=4 (paired per seed)", "value"] == pytest.approx(-1.0)
    assert e2.loc["final return bmg - last at K=4 (paired per seed)", "verdict"] == "contradicted"
    assert claims.claim.str.startswith("E").sum() == 4


def test_averaged_runs_get_the_intervention_rows_not_c3_c4():
    """last_m16 (M = 16) at K = 4 ends 1.0 above last (M = 1), beyond delta = 0.5: C5' holds; at
    K = 1 it ends 0.2 above its K = 4 run on every seed: C1' is contradicted. No C3/C4 row treats
    it as a mixing scheme."""
    training, summary = synthetic()
    last4 = training[(training.horizon == 4) & (training.scheme == "last")]
    m16_k4 = last4.assign(scheme="last_m16", **{"train/episode_return": last4["train/episode_return"] + 1.0})
    m16_k1 = m16_k4.assign(horizon=1, **{"train/episode_return": m16_k4["train/episode_return"] + 0.2})
    claims = analysis.claims_table(pd.concat([training, m16_k4, m16_k1]), summary,
                                   ["last", "uniform", "last_m4", "last_m16"], ROLES,
                                   sensitivity=SENSITIVITY, margin_fraction=0.25,
                                   averaged={"last_m4": ("last", 4), "last_m16": ("last", 16)})
    assert claims.claim.isin(["C3", "C4"]).sum() == 2  # uniform's only
    rows = claims.set_index("claim")
    assert rows.loc["C5'", "value"] == pytest.approx(1.0)
    assert rows.loc["C5'", "verdict"] == "holds" and "last_m16 (M=16)" in rows.loc["C5'", "measure"]
    assert rows.loc["C1'", "value"] == pytest.approx(-0.2)
    assert rows.loc["C1'", "verdict"] == "contradicted"


# ------------------------------------------------------------------- claims by role, not by name --


def claims_of(cfg, training, summary):
    """The claims table as ``python -m mgrl claims`` builds it from ``cfg``."""
    averaged = {s: (scheme_of(cfg, s).kind, meta_samples_of(cfg, s)) for s in averaged_schemes(cfg)}
    return analysis.claims_table(training, summary, claimed_schemes(cfg), claim_roles(cfg),
                                 sensitivity=SENSITIVITY, margin_fraction=0.25,
                                 aliases=scheme_aliases(cfg), extra_estimators=extra_estimators(cfg),
                                 averaged=averaged)


def renamed(frame, names):
    return frame.assign(scheme=[names.get(s, s) for s in frame.scheme])


def test_claims_take_the_k_step_scheme_by_kind_not_by_name():
    """A scheme named last of kind uniform and kstep of kind last: kstep is the K-step estimator of
    every claim, the one named last is a mixing scheme; the averaged run of the largest M is of the
    uniform kind, so C5' and C1' take the last-kind one."""
    cfg = config_from_dict({"seeds": [0], "horizons": [1, 4], "probe": {"reference_horizon": 4},
                            "schemes": {"last": {"kind": "uniform"}, "kstep": {"kind": "last"},
                                        "bmg": {"kind": "bmg", "bootstrap_steps": 1},
                                        "last_m16": {"kind": "uniform", "meta_samples": 16},
                                        "kstep_m4": {"kind": "last", "meta_samples": 4}}})
    assert claim_roles(cfg) == {"k_step": "kstep", "mixing": "last"}
    assert scheme_aliases(cfg)[(1, "last")] == "kstep"  # K = 1: one estimator, trained as kstep
    names = {"last": "kstep", "uniform": "last"}  # synthetic(): last is K-step, uniform mixing
    training, summary = (renamed(f, names) for f in synthetic())
    training = training[~((training.horizon == 1) & (training.scheme == "last"))]
    summary = summary[~((summary.horizon == 1) & (summary.scheme == "last"))]  # the alias's rows
    kstep4 = training[(training.horizon == 4) & (training.scheme == "kstep")]
    returns = kstep4["train/episode_return"]
    extra = [kstep4.assign(scheme="bmg"),
             kstep4.assign(scheme="kstep_m4", **{"train/episode_return": returns + 1.0}),
             kstep4.assign(scheme="last_m16", **{"train/episode_return": returns + 5.0})]
    bmg = summary[(summary.horizon == 4) & (summary.scheme == "kstep")].assign(scheme="bmg")
    claims = claims_of(cfg, pd.concat([training, *extra]), pd.concat([summary, bmg]))
    rows = claims.set_index("claim")
    assert list(claims.claim) == ["C1", "C2", "C3", "C4", "C5", "C5d", "C5'", "E1", "E2", "E1",
                                  "E2"]
    assert "kstep K=4 - K=1" in rows.loc["C1", "measure"] and rows.loc["C1", "verdict"] == "holds"
    assert rows.loc["C2", "measure"] == "Var[kstep, K=4] / Var[kstep, K=1]"
    assert rows.loc["C2", "value"] == pytest.approx(np.exp(np.mean(np.log([10, 11, 9, 10]))))
    assert rows.loc["C3", "measure"] == "Var[kstep, K=4] / Var[last, K=4]"
    assert rows.loc["C3", "statement"].startswith("mixing (last) cuts")
    assert rows.loc["C4", "measure"] == "final return last - kstep at K=4 (paired per seed)"
    assert rows.loc["C5", "measure"] == "final return kstep at K=4 - at K=1 (paired per seed)"
    assert rows.loc["C5'", "measure"] == ("final return kstep_m4 (M=4) - kstep (M=1) at K=4 "
                                          "(paired per seed)")
    assert rows.loc["C5'", "value"] == pytest.approx(1.0)
    assert (claims.verdict.head(5) == "holds").all()  # synthetic()'s clear data, as with last
    e = claims[claims.claim.str.startswith("E")]
    assert list(e.measure) == ["SNR[bmg, K=4] / SNR[kstep, K=4]",
                               "final return bmg - kstep at K=4 (paired per seed)",
                               "SNR[bmg, K=4] / SNR[last, K=4]",
                               "final return bmg - last at K=4 (paired per seed)"]
    table = analysis.variance_reduction_table(analysis.expand_aliases(summary, scheme_aliases(cfg)),
                                              mixing_schemes(cfg), claim_roles(cfg))
    assert list(zip(table.horizon, table.scheme)) == [(1, "last"), (4, "last")]
    assert table.set_index("horizon").loc[4, "reduction"] == pytest.approx(rows.loc["C3", "value"])


def test_claims_without_a_k_step_scheme_get_no_k_step_rows():
    """No scheme of the last kind: no C1-C5, C5', C1' rows (not rows of nan); the extra estimator
    is compared with the mixing scheme only; no variance-reduction rows."""
    cfg = config_from_dict({"seeds": [0], "horizons": [1, 4], "probe": {"reference_horizon": 4},
                            "schemes": {"mix": {"kind": "uniform"},
                                        "lambda_0.5": {"kind": "lambda", "rho": 0.5},
                                        "mix_m4": {"kind": "uniform", "meta_samples": 4},
                                        "bmg": {"kind": "bmg", "bootstrap_steps": 1}}})
    assert claim_roles(cfg) == {"mixing": "mix"}
    names = {"last": "lambda_0.5", "uniform": "mix"}
    training, summary = (renamed(f, names) for f in synthetic())
    mix4 = training[(training.horizon == 4) & (training.scheme == "mix")]
    bmg = summary[(summary.horizon == 4) & (summary.scheme == "mix")].assign(scheme="bmg")
    claims = claims_of(cfg, pd.concat([training, mix4.assign(scheme="bmg"),
                                       mix4.assign(scheme="mix_m4")]), pd.concat([summary, bmg]))
    assert list(claims.claim) == ["E1", "E2"]
    assert list(claims.measure) == ["SNR[bmg, K=4] / SNR[mix, K=4]",
                                    "final return bmg - mix at K=4 (paired per seed)"]
    assert np.isfinite(claims[["value", "ci_lo", "ci_hi"]].to_numpy(float)).all()
    assert analysis.variance_reduction_table(summary, mixing_schemes(cfg), claim_roles(cfg)).empty


def test_direction_variance_is_scale_free_and_zero_for_one_direction():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(50, 2)) + np.array([1.0, 0.5])
    reference = np.array([[1.0, 0.5]])
    base = stats.estimator_statistics(samples, reference)["direction_variance"]
    scaled = stats.estimator_statistics(samples * 1e3, reference)["direction_variance"]
    assert 0.0 < base < 50 / 49 and scaled == pytest.approx(base, rel=1e-12)
    units = samples / np.linalg.norm(samples, axis=1, keepdims=True)
    assert base == pytest.approx(50 / 49 * (1 - np.sum(units.mean(axis=0) ** 2)))
    same_way = np.outer(rng.uniform(0.5, 2.0, size=20), [3.0, -4.0])  # one direction, any length
    assert stats.estimator_statistics(same_way, reference)["direction_variance"] == pytest.approx(
        0.0, abs=1e-15)


def test_a_single_horizon_gets_no_claim_that_compares_horizons():
    """K = 1 only (as the published and Discounting Chain experiments): C1, C2 and C5 compare K_max
    with K_min, so they are absent, not rows of a scheme compared with itself."""
    cfg = config_from_dict({"seeds": [0], "horizons": [1], "probe": {"reference_horizon": 1},
                            "schemes": {"mg": {"kind": "last"},
                                        "bmg": {"kind": "bmg", "bootstrap_steps": 1}}})
    training, summary = synthetic()
    training, summary = (f[f.horizon == 1] for f in (training, summary))
    training, summary = (renamed(f, {"last": "mg"}) for f in (training, summary))
    bmg_training = training[training.scheme == "mg"].assign(scheme="bmg")  # K = 1 has no uniform run
    bmg_summary = summary[summary.scheme == "uniform"].assign(scheme="bmg")
    claims = claims_of(cfg, pd.concat([training, bmg_training]), pd.concat([summary, bmg_summary]))
    assert list(claims.claim) == ["E1", "E2"] and not claims.isna().any().any()
    assert set(claims.measure.str.contains("K=1")) == {True}


# ------------------------------------------------------------- the margin and the tested claims --


def test_the_margin_follows_the_gamma_effect_as_declared():
    """delta = margin_fraction x (max - min fixed-gamma final return): doubling the synthetic
    sensitivity table's range doubles delta, in the boundary column and the criterion, and moves
    the C5 verdict of a harm of 0.75 from holds (delta 0.5) to contradicted (delta 1)."""
    training, summary = synthetic(c5=(-0.75, -0.8, -0.7, -0.75))
    wide = SENSITIVITY.assign(final_return=[BASELINE_RETURN, 14.0, 30.0])  # effect 4
    tables = {effect: analysis.claims_table(training, summary, ["last", "uniform"], ROLES,
                                            sensitivity=table, margin_fraction=0.25)
              .set_index("claim") for effect, table in ((2.0, SENSITIVITY), (4.0, wide))}
    for effect, claims in tables.items():
        delta = 0.25 * effect
        assert claims.loc["C4", "boundary"] == pytest.approx(-delta)
        assert claims.loc["C1", "boundary"] == 0.0 and claims.loc["C2", "boundary"] == 1.0
        assert f"x gamma effect {effect:g} = " in claims.loc["C5", "criterion"]
        assert claims.loc["C5", "criterion"].split(": holds")[0].endswith(f"= {delta:g}")
    assert tables[2.0].loc["C5", "verdict"] == "holds"
    assert tables[4.0].loc["C5", "verdict"] == "contradicted"
    assert tables[2.0].loc["C5d", "verdict"] == tables[4.0].loc["C5d", "verdict"] == "holds"
    # Half the fraction, half the margin: the fraction is what the config declares.
    half = analysis.claims_table(training, summary, ["last", "uniform"], ROLES, sensitivity=wide,
                                 margin_fraction=0.125).set_index("claim")
    assert half.loc["C4", "boundary"] == pytest.approx(-0.5)


def test_without_two_fixed_gammas_no_margin_claim_gets_a_row():
    training, summary = synthetic()
    for sensitivity in (None, SENSITIVITY.iloc[[0]]):
        claims = analysis.claims_table(training, summary, ["last", "uniform"], ROLES,
                                       sensitivity=sensitivity)
        assert list(claims.claim) == ["C1", "C2", "C3", "C5d"]
        assert not claims.isna().any().any()
        assert not claims.astype(str).apply(lambda column: column.str.contains("nan")).any().any()


def test_only_the_tested_claims_get_rows():
    training, summary = synthetic()
    claims = analysis.claims_table(training, summary, ["last", "uniform"], ROLES,
                                   sensitivity=SENSITIVITY, tested=("C2", "C5"))
    assert list(claims.claim) == ["C2", "C5"]


def test_a_single_horizon_config_gets_no_horizon_claims_and_naming_one_is_an_error():
    """K = 1 only: C1, C2 (and C5, C5d, which compare K_max with 1) cannot apply. With claims.tested
    unset the table has no row for them; naming one is a ConfigError naming claims.tested."""
    from mgrl.claim_support import claim_support

    base = {"seeds": [0], "horizons": [1], "probe": {"reference_horizon": 1},
            "schemes": {"last": {"kind": "last"}, "uniform": {"kind": "uniform"}},
            "sensitivity": {"gammas": [0.99]}}
    cfg = config_from_dict(base)
    support = claim_support(cfg, [0.99])
    assert support["C1"] == support["C2"] == "a single horizon: nothing to compare"
    assert support["C5"] == support["C5d"] == "K_max = 1"
    training, summary = synthetic()
    one = [f[f.horizon == 1] for f in (training, summary)]
    claims = claims_of(cfg, *one)
    assert not {"C1", "C2", "C5", "C5d"} & set(claims.claim)
    assert not claims.isna().any().any()
    for claim in ("C1", "C5d", "E1"):
        with pytest.raises(ConfigError, match=f"claims.tested.*{claim} cannot be tested here"):
            config_from_dict({**base, "claims": {"tested": [claim]}})
    with pytest.raises(ConfigError, match="claims.tested.*C4 cannot be tested here: .*sensitivity"):
        config_from_dict({**base, "horizons": [1, 2], "probe": {"reference_horizon": 2},
                          "sensitivity": {"gammas": []}, "claims": {"tested": ["C4"]}})
    with pytest.raises(ConfigError, match="claims.tested"):
        config_from_dict({**base, "claims": {"tested": ["C9"]}})


def test_seed_sd_recovers_the_sd_behind_a_t_interval():
    values = np.array([0.3, -0.1, 0.25, 0.05, 0.4])
    _, lo, hi, n = stats.mean_ci(values)
    assert analysis.seed_sd(lo, hi, n) == pytest.approx(values.std(ddof=1), rel=1e-9)


@pytest.mark.parametrize("sd, delta", [(0.2, 0.44), (1.0, 1.0), (0.5, 0.2)])
def test_seeds_for_power_decides_with_the_stated_power_by_simulation(sd, delta):
    """At the returned n, a 95% t-interval of n draws N(0, sd) has its lower end above -delta (the
    non-inferiority decision at a true difference of 0) in >= 80% of 40000 simulated experiments,
    and at n - 1 in fewer (the smallest such n; a Monte Carlo error of ~0.2%)."""
    n = analysis.seeds_for_power(sd, delta)
    rng = np.random.default_rng(0)

    def decided(k):
        draws = rng.normal(0.0, sd, size=(40000, k))
        half = scipy_stats.t.ppf(0.975, k - 1) * draws.std(axis=1, ddof=1) / np.sqrt(k)
        return np.mean(draws.mean(axis=1) - half > -delta)

    assert decided(n) >= 0.79
    if n > 2:
        assert decided(n - 1) < 0.81


def test_the_margin_sweep_redecides_each_margin_row_by_its_rule():
    training, summary = synthetic(c5=(-0.75, -0.8, -0.7, -0.75))
    claims = analysis.claims_table(training, summary, ["last", "uniform"], ROLES,
                                   sensitivity=SENSITIVITY, margin_fraction=0.25)
    sweep = analysis.margin_sweep(claims, 2.0, [0.25, 0.5])
    assert list(sweep.claim) == ["C4", "C5"]  # margin claims only
    assert list(sweep["0.25"]) == list(claims.set_index("claim").loc[["C4", "C5"], "verdict"])
    assert sweep.set_index("claim").loc["C5", "0.5"] == "contradicted"  # delta 1 > the harm


def test_seeds_needed_pools_both_seed_sets():
    training, summary = synthetic()
    a = analysis.claims_table(training, summary, ["last", "uniform"], ROLES, sensitivity=SENSITIVITY)
    b = analysis.claims_table(*synthetic(c4=(0.3, -0.2, 0.1, 0.0), c5=(-1.0, -1.4, -0.6, -1.0)),
                              ["last", "uniform"], ROLES, sensitivity=SENSITIVITY)
    table = analysis.seeds_needed_table(a, b).set_index("claim")
    assert list(table.index) == ["C4", "C5"]
    sd_b = np.std([0.3, -0.2, 0.1, 0.0], ddof=1)
    assert table.loc["C4", "sd_seeds_b"] == pytest.approx(sd_b, rel=1e-9)
    pooled = np.sqrt((table.loc["C4", "sd_seeds_a"] ** 2 + sd_b ** 2) / 2)  # equal n
    assert table.loc["C4", "sd_pooled"] == pytest.approx(pooled)
    assert table.loc["C4", "delta"] == pytest.approx(0.5)
    assert table.loc["C4", "seeds_for_power"] == analysis.seeds_for_power(pooled, 0.5)


def test_the_intervention_table_compares_arms_of_one_meta_optimiser_paired_per_seed():
    """Per pair (more samples, or at equal M the later arm, minus the other; same optimiser): the
    final-gamma and return differences paired per seed, and the ratio of mean meta-steps."""
    arms = {"last": (1, "adam", 0.03), "last_m16": (16, "adam", 0.03),
            "last_lr": (1, "adam", 0.084), "sgd": (1, "sgd", 20.0), "sgd_m16": (16, "sgd", 20.0)}
    assert analysis.intervention_pairs(arms) == [("last_lr", "last"), ("last_m16", "last"),
                                                 ("last_m16", "last_lr"), ("sgd_m16", "sgd")]
    rows = []
    gammas = {"last": 0.4, "last_m16": 0.75, "last_lr": 0.6, "sgd": 0.5, "sgd_m16": 0.5}
    steps = {"last": 1.0, "last_m16": 2.8, "last_lr": 2.8, "sgd": 1.0, "sgd_m16": 1.0}
    for seed in range(4):
        for scheme in arms:
            for interval in (1, 2):
                rows.append({"seed": seed, "interval": interval, "horizon": 4, "scheme": scheme,
                             "train/episode_return": 15.0 + seed + (scheme == "last_m16"),
                             "train/reward_per_step": 0.1, "env_steps": 100 * interval,
                             "meta/gamma": gammas[scheme] + 0.01 * seed,
                             "meta/step_gamma": steps[scheme] * (1 + seed) * 1e-3})
    table = analysis.intervention_table(pd.DataFrame(rows), 4, arms).set_index(["arm", "base"])
    matched = table.loc[("last_m16", "last_lr")]
    logit = lambda g: np.log(g) - np.log1p(-g)  # noqa: E731
    lift = np.mean([logit(0.75 + 0.01 * s) - logit(0.6 + 0.01 * s) for s in range(4)])
    assert matched["gamma_logit_difference"] == pytest.approx(lift)
    assert matched["arm_gamma_lo"] < matched["arm_gamma"] == pytest.approx(
        1 / (1 + np.exp(-np.mean([logit(0.75 + 0.01 * s) for s in range(4)]))))
    assert matched["return_difference"] == 1.0 and matched["return_lo"] == 1.0
    assert matched["step_ratio"] == pytest.approx(1.0)
    assert table.loc[("last_m16", "last"), "step_ratio"] == pytest.approx(2.8)
    assert table.loc[("sgd_m16", "sgd"), "gamma_logit_difference"] == pytest.approx(0.0, abs=1e-12)
    assert (table["seeds"] == 4).all()
    assert "last_m16 - last_lr" in analysis.intervention_markdown(table.reset_index())


def test_support_and_rows_agree_when_schemes_run_at_some_horizons_only():
    """A K-step scheme that runs at K_max only: C1, C2, C5 cannot be tested (support says why),
    and the claims table, given no K = 1 cells, has no row for them rather than a nan. An averaged
    scheme that skips K = 1 is A of C5' (the largest M at K_max) but C1' is unsupported."""
    from mgrl.claim_support import averaged_k_step, claim_support

    base = {"seeds": [0], "horizons": [1, 4], "probe": {"reference_horizon": 4},
            "sensitivity": {"gammas": [0.99]}}
    cfg = config_from_dict({**base, "schemes": {"last": {"kind": "last", "horizons": [4]},
                                                "uniform": {"kind": "uniform"}}})
    support = claim_support(cfg, [0.99])
    assert support["C1"] == support["C2"] == "the K-step scheme does not run at K_min"
    assert support["C5"] == "the K-step scheme does not run at K = 1" and support["C3"] is None
    training, summary = synthetic()
    no_k1 = [f[~((f.horizon == 1) & (f.scheme == "last"))] for f in (training, summary)]
    claims = claims_of(cfg, *no_k1)
    assert set(claims.claim) == {"C3", "C4"} and not claims.isna().any().any()
    with pytest.raises(ConfigError, match="claims.tested.*C1 cannot"):
        config_from_dict({**base, "schemes": {"last": {"kind": "last", "horizons": [4]}},
                          "claims": {"tested": ["C1"]}})
    averaged = config_from_dict({**base, "schemes": {
        "last": {"kind": "last"}, "last_m4": {"kind": "last", "meta_samples": 4},
        "last_m16": {"kind": "last", "meta_samples": 16, "horizons": [4]}}})
    assert averaged_k_step(averaged) == "last_m16"
    support = claim_support(averaged, [0.99])
    assert support["C5'"] is None
    assert support["C1'"] == "the averaged scheme last_m16 does not run at K = 1"


def test_a_run_config_of_a_scheme_with_several_horizons_reads_back():
    from mgrl.runs import run_config

    cfg = config_from_dict({"seeds": [0], "horizons": [1, 2, 4], "probe": {"reference_horizon": 4},
                            "schemes": {"last": {"kind": "last"},
                                        "last_m4": {"kind": "last", "meta_samples": 4,
                                                    "horizons": [2, 4]}}})
    run = run_config(cfg, 4, "last_m4")
    assert run.schemes["last_m4"].horizons == (4,)
    assert config_from_dict(run.to_dict()) == run  # valid: the job reads it back
    assert run_config(run, 4, "last_m4") == run
    only_4 = config_from_dict({"seeds": [0], "horizons": [1, 2, 4],
                               "probe": {"reference_horizon": 4},
                               "schemes": {"last": {"kind": "last"},
                                           "last_m4": {"kind": "last", "meta_samples": 4,
                                                       "horizons": [4]}}})
    assert run_config(only_4, 4, "last_m4").hash() == run.hash()  # more Ks rerun no run


def test_the_cli_leaves_the_intervention_controls_out_of_the_claims():
    cfg = load_config(Path(__file__).resolve().parents[1] / "config" / "intervention.yaml")
    assert claimed_schemes(cfg) == ["last", "uniform", "last_m16"]
