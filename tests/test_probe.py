"""Estimator probes: samples equal direct meta-gradients, statistics, Parquet output.

One tiny a2c run (2 seeds, 2 intervals) is trained and probed once per module; the statistics are
checked separately on synthetic Gaussian samples with known mean and variance.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from conftest import tiny_config
from mgrl import probe, stats
from mgrl.checkpoint import CheckpointError
from mgrl.config import META_PARAMETERS, validate
from mgrl.train import make_agent, run_training
from mgrl.estimators import scheme_weights
from mgrl.runs import scheme_of

SEED = 1  # the second seed of the run, so selecting along the seed axis is exercised
INTERVAL = 1


def probe_config(**overrides):
    cfg = tiny_config(
        horizons=[1, 2],  # K and M of the tiny pipeline's probes: the compilation cache serves both
        train={"num_intervals": 2},
        probe={"num_samples": 16, "reference_horizon": 2, "reference_samples": 16,
               "checkpoints": [INTERVAL], "bootstrap": 200},
        **overrides,
    )
    cfg = dataclasses.replace(cfg, schemes={k: cfg.schemes[k] for k in ("last", "uniform")})
    validate(cfg)
    return cfg


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """(cfg, run_dir, samples, summary, compiled programs added, probe seconds)."""
    cfg = probe_config()
    root = tmp_path_factory.mktemp("probe")
    run_training(cfg, 1, "a2c", [0, 1], root / "run", progress=False)
    programs = (probe.sample_meta_gradients, probe.sample_outer_loss_jacobians)
    compiled_before = [f._cache_size() for f in programs]
    t = time.perf_counter()
    samples, summary = probe.run_probe(cfg, root / "run", SEED, root / "out")
    seconds = time.perf_counter() - t
    compiled = [f._cache_size() - n for f, n in zip(programs, compiled_before)]
    disk_samples = pd.read_parquet(root / "out" / "samples.parquet")
    disk_summary = pd.read_parquet(root / "out" / "summary.parquet")
    pd.testing.assert_frame_equal(samples, disk_samples)
    pd.testing.assert_frame_equal(summary, disk_summary)
    return cfg, root / "run", disk_samples, disk_summary, compiled, seconds


def sample_matrix(samples: pd.DataFrame, horizon: int, scheme: str, role: str = "estimate"):
    """[M, 2] (gamma, lambda) of one (K, scheme) from the long-form samples."""
    rows = samples[(samples.horizon == horizon) & (samples.scheme == scheme)
                   & (samples.role == role)]
    wide = rows.pivot(index="sample", columns="meta_parameter", values="value")
    return wide[list(META_PARAMETERS)].to_numpy()


# ------------------------------------------------------------------------ probes of real states --


def test_probe_samples_equal_direct_meta_gradients_with_the_same_keys(probed):
    """Every (K, scheme) sample and the reference sample of key m come from one forward pass;
    each equals its own reverse-mode meta-gradient with key m."""
    cfg, run_dir, samples, _, _, _ = probed
    agent = make_agent(cfg)
    state = probe.load_probe_state(cfg, run_dir, SEED, INTERVAL)
    keys = probe.probe_keys(SEED, INTERVAL, cfg.probe.num_samples)
    direct = jax.jit(lambda key, w: agent.meta_gradient(state, key, w)[0])
    k_ref = cfg.probe.reference_horizon
    reference = sample_matrix(samples, k_ref, "last", role="reference")
    for K in cfg.horizons:
        for scheme in ("last", "uniform"):
            got = sample_matrix(samples, K, scheme)
            w = jnp.asarray(scheme_weights(scheme_of(cfg, scheme), K), jnp.float32)
            for m in (0, 9):
                want = np.array([float(direct(keys[m], w)[p]) for p in META_PARAMETERS])
                np.testing.assert_allclose(got[m], want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    w_ref = jnp.zeros((k_ref,), jnp.float32).at[-1].set(1.0)
    want = np.array([float(direct(keys[3], w_ref)[p]) for p in META_PARAMETERS])
    np.testing.assert_allclose(reference[3], want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    K = 2
    last, uniform = sample_matrix(samples, K, "last"), sample_matrix(samples, K, "uniform")
    for m in (0, 5, 15):
        for scheme, got in (("last", last), ("uniform", uniform)):
            w = jnp.asarray(scheme_weights(scheme_of(cfg, scheme), K), jnp.float32)
            want = np.array([float(direct(keys[m], w)[p]) for p in META_PARAMETERS])
            np.testing.assert_allclose(got[m], want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
        # Common random numbers: uniform = (L'(theta_1) + L'(theta_2)) / 2 on the rollouts of the
        # *same* key as last's sample m, so it is linear in last's sample.
        first = sample_matrix(samples, 1, "last")[m]
        np.testing.assert_allclose(uniform[m], 0.5 * first + 0.5 * last[m], rtol=1e-9)
    assert np.all(np.abs(last) > 0)
    # Samples differ from key to key (fresh rollouts), so the checks above are not vacuous.
    assert np.unique(last[:, 0]).size == cfg.probe.num_samples


def test_returns_reference_is_the_policy_gradient_with_monte_carlo_advantages(probed):
    """probe.reference_advantages returns: the reference of key m is the meta-gradient of
    L'(theta_K; R_K) with A'_t = G_t - v(s_t), G the undiscounted return to the episode's end,
    theta_K playing on after R_K (recomputed here by a plain loop over the played-on rollouts; the
    tiny board's episodes end within 8 steps, so 12 more steps finish them all). It is paired with
    the estimates (the same window) and differs from the critic's A' sample of that window."""
    from mgrl.losses import critic_values

    cfg, run_dir, samples, _, _, _ = probed
    agent = make_agent(cfg)
    state = probe.load_probe_state(cfg, run_dir, SEED, INTERVAL)
    K, steps = 1, 12  # a 1-step window: the same code as K_ref's, a smaller program
    keys = probe.probe_keys(SEED, INTERVAL, 2)
    got = np.asarray(probe.sample_return_references(agent, state, keys, K, steps))
    last = jnp.zeros((K,), jnp.float32).at[-1].set(1.0)
    window = jax.jit(lambda key: agent.meta_loss(state.eta, state, key, last)[1])
    collect = jax.jit(agent.collect)
    gradient = jax.jit(jax.grad(lambda eta, key, frozen: agent.meta_loss(eta, state, key, last,
                                                                         frozen)[0]))
    T = cfg.env.rollout_length
    for m in range(2):
        params, _, carry, rollout, aux = window(keys[m])
        rewards, dones = [np.asarray(rollout.transitions.reward)], [np.asarray(rollout.transitions.done)]
        for i in range(-(-steps // T)):
            carry, more = collect(params, carry, jax.random.fold_in(keys[m], 2 ** 20 + i))
            rewards.append(np.asarray(more.transitions.reward))
            dones.append(np.asarray(more.transitions.done))
        rewards, dones = np.concatenate(rewards), np.concatenate(dones)
        assert dones[T:].any(axis=0).all() or dones[:T].any(axis=0).all()
        returns, running = np.zeros_like(rewards), np.zeros(rewards.shape[1])
        for t in reversed(range(len(rewards))):
            running = rewards[t] + (1.0 - dones[t]) * running
            returns[t] = running
        advantages = returns[:T] - np.asarray(critic_values(agent.network.apply, params, rollout))[:-1]
        frozen = aux["outer_advantages"].at[-1].set(jnp.asarray(advantages))
        want = gradient(state.eta, keys[m], frozen)
        want = np.array([float(want[p]) for p in META_PARAMETERS])
        np.testing.assert_allclose(got[m], want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    critic_estimate = sample_matrix(samples, K, "last")[:2]  # the same windows, the critic's A'
    assert not np.allclose(got, critic_estimate, rtol=1e-2)


def test_remat_and_sequential_batches_give_the_same_samples(probed):
    """meta.remat, samples_per_batch and reverse vs forward mode change memory and speed, not the
    samples."""
    cfg, run_dir, samples, _, _, _ = probed
    remat_cfg = dataclasses.replace(cfg, meta=dataclasses.replace(cfg.meta, remat=True))
    agent = make_agent(remat_cfg)
    assert agent.remat
    state = probe.load_probe_state(cfg, run_dir, SEED, INTERVAL)
    K = 2
    keys = probe.probe_keys(SEED, INTERVAL, cfg.probe.num_samples)
    w = jnp.asarray(scheme_weights(scheme_of(cfg, "uniform"), K), jnp.float32)
    got = np.asarray(probe.sample_meta_gradients(agent, state, keys, w, samples_per_batch=4))
    want = sample_matrix(samples, K, "uniform")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_schemes_share_keys_identical_at_horizon_one_and_differ_beyond(probed):
    cfg, run_dir, samples, summary, _, _ = probed
    # sample m of every (K, scheme) is the window of key m: a pass of its own at K = 1 with the
    # probe's keys gives the stored K = 1 samples (the first step of the K_ref pass)
    state = probe.load_probe_state(cfg, run_dir, SEED, INTERVAL)
    keys = probe.probe_keys(SEED, INTERVAL, cfg.probe.num_samples)
    own_pass = np.asarray(probe.sample_outer_loss_jacobians(
        make_agent(cfg), state, keys, 1, samples_per_batch=cfg.probe.samples_per_batch))[:, 0]
    for scheme in ("last", "uniform"):
        np.testing.assert_allclose(sample_matrix(samples, 1, scheme), own_pass, rtol=1e-4,
                                   atol=1e-6 * np.abs(own_pass).max())
    # one forward pass per key: uniform at K = 2 mixes the K = 1 window and the K = 2 window's end
    k1, k2_last = sample_matrix(samples, 1, "uniform"), sample_matrix(samples, 2, "last")
    np.testing.assert_allclose(sample_matrix(samples, 2, "uniform"), (k1 + k2_last) / 2,
                               rtol=1e-9, atol=1e-12 * np.abs(k2_last).max())
    assert not np.allclose(sample_matrix(samples, 2, "last"), sample_matrix(samples, 2, "uniform"))


def test_run_probe_writes_documented_parquet_quickly(probed):
    """(The probe's time budget is a benchmark, not a test: `python benchmarks/probe_vmap.py
    --budget` times this same probe.)"""
    cfg, _, samples, summary, compiled, seconds = probed
    p = cfg.probe
    print(f"probe of {len(summary)} (K, scheme) cells: {seconds:.1f}s")
    assert list(samples.columns) == list(probe.SAMPLE_COLUMNS)
    assert list(summary.columns) == list(probe.SUMMARY_COLUMNS)
    n_cells = len(p.checkpoints) * len(cfg.horizons) * len(cfg.schemes)
    assert len(summary) == n_cells
    assert len(samples) == len(META_PARAMETERS) * (
        n_cells * p.num_samples + len(p.checkpoints) * p.reference_samples)
    assert (samples.role == "reference").sum() == len(META_PARAMETERS) * p.reference_samples
    assert set(summary.horizon) == set(cfg.horizons) and set(summary.scheme) == set(cfg.schemes)
    assert (summary.seed == SEED).all() and (summary.interval == INTERVAL).all()
    # Interval 1 of the a2c run: the first rollout plus 2 inner updates of T * B steps each.
    steps = cfg.env.rollout_length * cfg.env.num_envs * (1 + cfg.train.inner_updates_per_interval)
    assert (summary.env_steps == steps).all() and (samples.env_steps == steps).all()
    assert (summary.config_hash == cfg.hash()).all()
    assert summary.probed_parameters.iloc[0] == "gamma,lambda"
    for col in ("variance_trace", "var_gamma", "var_lambda", "snr"):
        assert np.all(np.isfinite(summary[col])) and np.all(summary[col] > 0), col
    for col in ("step_cosine", "variance_trace", "snr", "cosine_to_reference", "mean_gamma"):
        assert np.all(summary[f"{col}_lo"] <= summary[f"{col}_hi"]), col
    for col in ("step_cosine", "cosine_to_reference"):
        assert np.all((-1 <= summary[f"{col}_lo"]) & (summary[f"{col}_hi"] <= 1)), col
    assert (summary.shared_samples == min(p.num_samples, p.reference_samples)).all()
    # One compiled program in all: the forward passes of K_ref steps (M_ref = M keys) give the
    # reference and every (K, scheme); no reverse-mode program.
    assert compiled == [0, 1]


def test_summary_statistics_recompute_from_the_samples_file(probed):
    cfg, _, samples, summary, _, _ = probed
    reference = sample_matrix(samples, cfg.probe.reference_horizon, "last", role="reference")
    for _, row in summary.iterrows():
        x = sample_matrix(samples, row.horizon, row.scheme)
        assert x.shape == (cfg.probe.num_samples, 2)
        var = x.var(axis=0, ddof=1)
        np.testing.assert_allclose([row.var_gamma, row.var_lambda], var, rtol=1e-9)
        np.testing.assert_allclose(row.variance_trace, var.sum(), rtol=1e-9)
        ref = reference.mean(axis=0)
        np.testing.assert_allclose(row.reference_gamma, ref[0], rtol=1e-9)
        step = x.mean(0) / np.sqrt((x**2).mean(0))
        reference_step = reference.mean(0) / np.sqrt((reference**2).mean(0))
        np.testing.assert_allclose([row.step_gamma, row.step_lambda], step, rtol=1e-9)
        np.testing.assert_allclose(row.step_cosine, step @ reference_step / (
            np.linalg.norm(step) * np.linalg.norm(reference_step)), rtol=1e-9)
        # Paired keys: the debiased bias subtracts the variance of the paired difference.
        difference = x - reference
        np.testing.assert_allclose(row.bias2_debiased, np.sum(difference.mean(0) ** 2)
                                   - difference.var(0, ddof=1).sum() / len(x), rtol=1e-7,
                                   atol=1e-9 * var.sum())


def test_load_probe_state_selects_the_seed_and_names_missing_checkpoints(probed):
    cfg, run_dir, _, summary, _, _ = probed
    s0 = probe.load_probe_state(cfg, run_dir, 0, INTERVAL)
    s1 = probe.load_probe_state(cfg, run_dir, 1, INTERVAL)
    assert s1.env_steps.shape == () and int(s1.env_steps) == summary.env_steps.iloc[0]
    leaf0, leaf1 = jax.tree.leaves(s0.params)[0], jax.tree.leaves(s1.params)[0]
    assert leaf0.shape == leaf1.shape and not np.array_equal(leaf0, leaf1)
    with pytest.raises(CheckpointError, match="interval_000009.*does not exist"):
        probe.load_probe_state(cfg, run_dir, SEED, 9)
    with pytest.raises(CheckpointError, match="interval_000001.*not seed 7"):
        probe.load_probe_state(cfg, run_dir, 7, INTERVAL)
    other = probe_config(agent={"learning_rate": 0.02})
    with pytest.raises(CheckpointError, match="interval_000001.*another config"):
        probe.load_probe_state(other, run_dir, SEED, INTERVAL)


# ------------------------------------------------------------------ statistics on known samples --


def test_estimator_statistics_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    ref = np.array([[2.0, 2.0]])  # one reference sample: taken as exact
    s = stats.estimator_statistics(x, ref)
    np.testing.assert_allclose(s["mean"], [3.0, 5.0])
    np.testing.assert_allclose(s["variance"], [4.0, 13.0])
    assert s["variance_trace"] == pytest.approx(17.0)
    assert s["snr"] == pytest.approx(34.0 / 17.0)
    assert s["cosine_to_reference"] == pytest.approx(16.0 / np.sqrt(34.0 * 8.0))
    assert s["bias2_debiased"] == pytest.approx(1.0 + 9.0 - 17.0 / 3)
    # Adam's expected steps: mean / RMS per component; the exact reference's is (1, 1).
    step = np.array([3.0, 5.0]) / np.sqrt([35.0 / 3, 101.0 / 3])
    np.testing.assert_allclose(s["step"], step)
    assert s["step_cosine"] == pytest.approx(step.sum() / (np.linalg.norm(step) * np.sqrt(2)))
    # Leading batch axes are independent problems.
    batch = stats.estimator_statistics(np.stack([x, 2 * x]), ref)
    assert batch["snr"][0] == pytest.approx(s["snr"]) and batch["snr"][1] == pytest.approx(s["snr"])
    np.testing.assert_allclose(batch["variance_trace"], [17.0, 68.0])
    # The step is scale-free per component: rescaling lambda's samples 1000x changes nothing.
    rescaled = stats.estimator_statistics(x * [1.0, 1e3], ref * [1.0, 1e3])
    assert rescaled["step_cosine"] == pytest.approx(s["step_cosine"])
    assert rescaled["cosine_to_reference"] != pytest.approx(s["cosine_to_reference"])


def test_estimator_statistics_recover_gaussian_truth():
    rng = np.random.default_rng(0)
    mu, sd = np.array([1.0, -2.0]), np.array([0.5, 2.0])
    x = mu + sd * rng.standard_normal((200_000, 2))
    s = stats.estimator_statistics(x, mu[None])
    np.testing.assert_allclose(s["mean"], mu, atol=0.02)
    np.testing.assert_allclose(s["variance"], sd**2, rtol=0.02)
    np.testing.assert_allclose(s["step"], mu / np.sqrt(mu**2 + sd**2), atol=0.01)
    assert s["snr"] == pytest.approx(np.sum(mu**2) / np.sum(sd**2), rel=0.03)
    assert s["cosine_to_reference"] == pytest.approx(1.0, abs=1e-4)
    # A rotated reference: the raw cosine follows the geometry.
    s = stats.estimator_statistics(x, np.array([[2.0, 1.0]]))
    assert abs(s["cosine_to_reference"]) < 0.01


def test_bootstrap_intervals_cover_the_truth_at_the_nominal_rate():
    rng = np.random.default_rng(1)
    mu, sd = np.array([0.3, -1.0]), np.array([1.0, 0.5])
    repeats, M = 200, 100
    hits = {"mean": np.zeros(2), "variance_trace": 0.0}
    widths = []
    for _ in range(repeats):
        x = mu + sd * rng.standard_normal((M, 2))
        reference = mu + sd * rng.standard_normal((M, 2))
        ci = stats.bootstrap_intervals(x, reference, 0, 1000, rng)
        lo, hi = ci["mean"]
        hits["mean"] += (lo <= mu) & (mu <= hi)
        widths.append(hi - lo)
        lo, hi = ci["variance_trace"]
        hits["variance_trace"] += lo <= np.sum(sd**2) <= hi
    coverage_mean = hits["mean"] / repeats
    coverage_trace = hits["variance_trace"] / repeats
    assert np.all((0.88 <= coverage_mean) & (coverage_mean <= 0.99)), coverage_mean
    assert 0.88 <= coverage_trace <= 0.99, coverage_trace
    # Not just wide: the mean's interval has about the normal-theory width 2 * 1.96 sd / sqrt(M).
    np.testing.assert_allclose(np.mean(widths, axis=0), 2 * 1.96 * sd / np.sqrt(M), rtol=0.1)


def test_bootstrap_is_seeded_and_summary_uses_every_meta_parameter():
    rng = np.random.default_rng(2)
    x = rng.normal([1.0, 5.0], [1.0, 3.0], size=(32, 2))
    ref = rng.normal([1.0, 5.0], [1.0, 3.0], size=(16, 2))
    both = probe.summarise_samples(x, ref, 0, 200, np.random.default_rng(3))
    assert both == probe.summarise_samples(x, ref, 0, 200, np.random.default_rng(3))
    assert both["variance_trace"] == pytest.approx(both["var_gamma"] + both["var_lambda"])
    assert both["var_lambda"] == pytest.approx(x[:, 1].var(ddof=1))
    for col in ("cosine_to_reference", "step_cosine"):
        assert -1 <= both[f"{col}_lo"] <= both[col] <= both[f"{col}_hi"] <= 1, col
    # The debiased bias, independent keys: ||mean - ref||^2 minus both variances over their counts.
    plain = np.sum((x.mean(0) - ref.mean(0)) ** 2)
    expected = plain - x.var(0, ddof=1).sum() / 32 - ref.var(0, ddof=1).sum() / 16
    assert both["bias2_debiased"] == pytest.approx(expected)
    assert both["reference_var_lambda"] == pytest.approx(ref[:, 1].var(ddof=1))
