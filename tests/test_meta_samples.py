"""meta.samples M: the meta-update applies the mean of M meta-gradient samples of the window, sample
0's inner updates are the training trajectory, and averaging divides the variance by M (float64)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from mgrl.config import META_PARAMETERS, ConfigError, SchemeConfig
from mgrl.runs import averaged_schemes, estimator_identity, meta_samples_of, mixing_schemes, run_config, scheme_aliases
from mgrl.train import make_agent

M = 4
WEIGHTS = jnp.asarray([0.3, 0.7])  # a K = 2 mixing window


def as_array(grad) -> np.ndarray:
    return np.array([float(grad[p]) for p in META_PARAMETERS])


def float64_agents(scheme=None) -> dict:
    """A float64 agent with M = 4, the same agent with M = 1 ("single"), the state they start
    from, and the one-sample meta-gradient ``gradient(state, window key)`` of the K = 2 window (one
    program for every state)."""
    cfg = tiny_config(train={"dtype": "float64"}, meta={"samples": M})
    agent = make_agent(cfg, scheme)
    single = make_agent(dataclasses.replace(cfg, meta=dataclasses.replace(cfg.meta, samples=1)),
                        scheme)
    return {"agent": agent, "single": single, "state": jax.jit(agent.init)(jax.random.PRNGKey(5)),
            "gradient": jax.jit(lambda state, key: single.meta_gradient(state, key, WEIGHTS))}


@pytest.fixture(scope="module")
def mixing64():
    """The mixing window's float64 agents (:func:`float64_agents`), shared by the tests below."""
    with jax.enable_x64(True):
        yield float64_agents()


@pytest.fixture(scope="module", params=["mixing", "bmg"])
def averaged(request, mixing64):
    """One meta-step of a float64 agent with M = 4 (a mixing window, or a BMG agent with L = 1),
    its inputs, and the four samples one by one. The averaging calls ``meta_gradient`` whatever
    its mode, and forward mode's ``meta_gradient`` equals reverse mode's (tests/test_forward_mode.py),
    so reverse mode stands for both here."""
    with jax.enable_x64(True):
        agents = (mixing64 if request.param == "mixing"
                  else float64_agents(SchemeConfig("bmg", bootstrap_steps=1)))
        agent, single, state, gradient = (agents[k] for k in ("agent", "single", "state",
                                                              "gradient"))
        new_state, metrics = jax.jit(agent.meta_step)(state, WEIGHTS)
        _, window_key = jax.random.split(state.key)
        keys = agent.meta_sample_keys(window_key)
        samples = [gradient(state, k) for k in keys]
        yield {"state": state, "new_state": new_state, "metrics": metrics, "keys": keys,
               "samples": samples, "single": single}


def test_applied_meta_gradient_is_the_mean_of_the_samples_one_by_one(averaged):
    with jax.enable_x64(True):
        assert averaged["keys"].shape == (M, 2)
        assert len({tuple(np.asarray(k)) for k in averaged["keys"]}) == M  # M distinct windows
        one_by_one = np.stack([as_array(g) for g, _ in averaged["samples"]])
        applied = np.array([float(averaged["metrics"][f"meta/grad_{p}"]) for p in META_PARAMETERS])
        np.testing.assert_allclose(applied, one_by_one.mean(axis=0), rtol=1e-10, atol=0)
        assert not np.allclose(one_by_one[0], one_by_one[1], rtol=1e-3)  # the samples differ


def test_the_training_trajectory_is_sample_zeros_window(averaged):
    with jax.enable_x64(True):
        _, (_, outputs) = averaged["samples"][0]
        params = outputs[0]
        for got, want in zip(jax.tree.leaves(averaged["new_state"].params), jax.tree.leaves(params)):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        state, window = averaged["state"], averaged["single"].updates_per_window(len(WEIGHTS))
        assert int(averaged["new_state"].env_steps) - int(state.env_steps) == window * 3 * 4  # T B


def test_one_sample_is_the_plain_meta_step_bit_for_bit(mixing64):
    """meta.samples = 1 (the default) applies the window's own meta-gradient, no averaging: the
    logged meta-gradient and the new state equal meta_gradient's exactly."""
    with jax.enable_x64(True):
        single, state = mixing64["single"], mixing64["state"]
        assert single.meta_samples == 1
        new_state, metrics = jax.jit(single.meta_step)(state, WEIGHTS)
        _, window_key = jax.random.split(state.key)
        grad, (_, outputs) = mixing64["gradient"](state, window_key)
        for p in META_PARAMETERS:
            np.testing.assert_array_equal(np.asarray(metrics[f"meta/grad_{p}"]), np.asarray(grad[p]))
        for got, want in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(outputs[0])):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_averaging_divides_the_variance_by_m(mixing64):
    """On one state, 400 windows each: Var[mean of 4] / Var[one sample] per component is 1/4 within
    its sampling error. The tiny problem's meta-gradients are heavy-tailed (excess kurtosis ~10),
    so a 400-draw variance has a log standard error of ~sqrt((10 + 2) / 400) = 0.17 and the ratio
    of two ~0.25: the band [0.25 / 1.8, 0.25 x 1.8] is ~2.4 standard errors wide each way. A
    broken average (one key repeated: ratio 1; no averaging) falls outside it."""
    with jax.enable_x64(True):
        agent, one = mixing64["agent"], mixing64["gradient"]
        state = jax.jit(agent.init)(jax.random.PRNGKey(6))
        keys = jax.random.split(jax.random.PRNGKey(7), 400)
        mean_of_m = jax.jit(jax.vmap(lambda k: agent.averaged_meta_gradient(state, k, WEIGHTS)[0]))
        averaged = mean_of_m(keys)
        averaged_samples = np.stack([np.asarray(averaged[p]) for p in META_PARAMETERS], axis=1)
        # One sample per window: 400 calls of the shared program (a vmapped copy would be a
        # second float64 compilation costing more than the calls).
        single_samples = np.stack([as_array(one(state, k)[0])
                                   for k in jax.random.split(jax.random.PRNGKey(8), 400)])
        ratio = averaged_samples.var(axis=0, ddof=1) / single_samples.var(axis=0, ddof=1)
        assert np.all((0.25 / 1.8 < ratio) & (ratio < 0.25 * 1.8)), ratio


def test_meta_samples_set_per_scheme_make_their_own_runs():
    cfg = tiny_config(horizons=[1, 2], schemes={"last": {"kind": "last"},
                                                "uniform": {"kind": "uniform"},
                                                "last_m4": {"kind": "last", "meta_samples": 4}})
    assert [meta_samples_of(cfg, s) for s in ("last", "last_m4", "a2c")] == [1, 4, 1]
    assert averaged_schemes(cfg) == ["last_m4"]
    assert mixing_schemes(cfg) == ["last", "uniform", "lambda_0.5"]  # tiny_config's third scheme
    assert run_config(cfg, 2, "last_m4").meta.samples == 4
    assert run_config(cfg, 2, "last").meta.samples == 1
    # At K = 1 last and uniform are one estimator; last_m4 is not (it averages 4 samples).
    assert scheme_aliases(cfg) == {(1, "uniform"): "last", (1, "lambda_0.5"): "last",
                                   (2, "lambda_0.5"): "uniform"}  # rho = 0.5 at K = 2 is uniform
    assert estimator_identity(cfg, "last_m4", 2) != estimator_identity(cfg, "last", 2)


def test_meta_samples_below_one_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match="meta.samples"):
        tiny_config(meta={"samples": 0})
    with pytest.raises(ConfigError, match="schemes.last.meta_samples"):
        tiny_config(schemes={"last": {"kind": "last", "meta_samples": 0}})
