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


def float64_agents(scheme=None, sample_window: str = "whole") -> dict:
    """A float64 agent with M = 4, the same agent with M = 1 ("single"), the state they start
    from, and the one-sample meta-gradient ``gradient(state, window key)`` of the K = 2 window (one
    program for every state)."""
    cfg = tiny_config(train={"dtype": "float64"},
                      meta={"samples": M, "sample_window": sample_window})
    agent = make_agent(cfg, scheme)
    single = make_agent(dataclasses.replace(cfg, meta=dataclasses.replace(cfg.meta, samples=1)),
                        scheme)
    return {"agent": agent, "single": single, "state": jax.jit(agent.init)(jax.random.PRNGKey(5)),
            "gradient": jax.jit(lambda state, key: single.meta_gradient(state, key, WEIGHTS)),
            "meta_step": jax.jit(agent.meta_step)}


def shared_r0_agents(mixing64: dict) -> dict:
    """The mixing window's agents with ``meta.sample_window: shared_r0``: only the averaging agent
    differs; its M = 1 agent, start state and one-sample program are the whole-window ones (one
    sample has no extra windows to draw)."""
    cfg = tiny_config(train={"dtype": "float64"}, meta={"samples": M, "sample_window": "shared_r0"})
    agent = make_agent(cfg)
    return dict(mixing64, agent=agent, meta_step=jax.jit(agent.meta_step))


@pytest.fixture(scope="module")
def mixing64():
    """The mixing window's float64 agents (:func:`float64_agents`), shared by the tests below."""
    with jax.enable_x64(True):
        yield float64_agents()


def whole_window_start(agent, state, key):
    """By hand, what an extra whole-window sample starts from: the key split into (R_0's key,
    the window's key), R_0 a fresh rollout of theta_0 from the state's environments."""
    start_key, window_key = jax.random.split(key)
    env, rollout = agent.collect(state.params, state.env, start_key)
    return state._replace(env=env, rollout=rollout), window_key


@pytest.fixture(scope="module", params=["mixing", "bmg", "mixing shared_r0"])
def averaged(request, mixing64):
    """One meta-step of a float64 agent with M = 4 (a mixing window, or a BMG agent with L = 1;
    the extra samples draw the whole window, or with ``shared_r0`` reuse the stored R_0), its
    inputs, and the four samples one by one: sample 0 the training window, samples 1..3 from
    their own R_0 (:func:`whole_window_start`) or the stored one. The averaging calls
    ``meta_gradient`` whatever its mode, and forward mode's ``meta_gradient`` equals reverse
    mode's (tests/test_forward_mode.py), so reverse mode stands for both here."""
    with jax.enable_x64(True):
        agents = {"mixing": lambda: mixing64,
                  "bmg": lambda: float64_agents(SchemeConfig("bmg", bootstrap_steps=1)),
                  "mixing shared_r0": lambda: shared_r0_agents(mixing64)}
        agents = agents[request.param]()
        agent, single, state, gradient = (agents[k] for k in ("agent", "single", "state",
                                                              "gradient"))
        new_state, metrics = agents["meta_step"](state, WEIGHTS)
        _, window_key = jax.random.split(state.key)
        keys = agent.meta_sample_keys(window_key)
        whole = not request.param.endswith("shared_r0")
        samples = [gradient(state, keys[0])] + [
            gradient(*(whole_window_start(agent, state, k) if whole else (state, k)))
            for k in keys[1:]]
        shared = [gradient(state, k) for k in keys[1:]]  # what shared_r0 would average
        yield {"state": state, "new_state": new_state, "metrics": metrics, "keys": keys,
               "samples": samples, "single": single, "whole": whole, "shared": shared}


def test_applied_meta_gradient_is_the_mean_of_the_samples_one_by_one(averaged):
    with jax.enable_x64(True):
        assert averaged["keys"].shape == (M, 2)
        assert len({tuple(np.asarray(k)) for k in averaged["keys"]}) == M  # M distinct windows
        one_by_one = np.stack([as_array(g) for g, _ in averaged["samples"]])
        applied = np.array([float(averaged["metrics"][f"meta/grad_{p}"]) for p in META_PARAMETERS])
        np.testing.assert_allclose(applied, one_by_one.mean(axis=0), rtol=1e-10, atol=0)
        assert not np.allclose(one_by_one[0], one_by_one[1], rtol=1e-3)  # the samples differ
        shared = np.stack([as_array(g) for g, _ in averaged["shared"]])
        # Whole windows are not the stored-R_0 windows of the same keys (a fresh R_0 moves theta_1).
        assert np.allclose(one_by_one[1:], shared, rtol=1e-10, atol=0) != averaged["whole"]


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
    """From one state's parameters and environments, 400 whole windows each (R_0 drawn too, as in
    training, where each window's R_0 is fresh): Var[mean of 4] / Var[one sample] per component is
    1/4 within its sampling error. The tiny problem's meta-gradients are heavy-tailed (excess kurtosis ~10),
    so a 400-draw variance has a log standard error of ~sqrt((10 + 2) / 400) = 0.17 and the ratio
    of two ~0.25: the band [0.25 / 1.8, 0.25 x 1.8] is ~2.4 standard errors wide each way. A
    broken average (one key repeated: ratio 1; no averaging) falls outside it."""
    with jax.enable_x64(True):
        agent, one, meta_step = (mixing64[k] for k in ("agent", "gradient", "meta_step"))
        state = jax.jit(agent.init)(jax.random.PRNGKey(6))
        start = jax.jit(lambda k: whole_window_start(agent, state, k))

        def mean_of_m(key):  # the logged meta-gradient of one meta-step from a fresh R_0
            start_key, window_key = jax.random.split(key)
            fresh, _ = start(start_key)
            metrics = meta_step(fresh._replace(key=window_key), WEIGHTS)[1]
            return np.array([float(metrics[f"meta/grad_{p}"]) for p in META_PARAMETERS])

        # 400 calls each of the programs compiled once for the tests above (a vmapped copy would
        # be another float64 compilation costing more than the calls)
        averaged_samples = np.stack([mean_of_m(k) for k in jax.random.split(jax.random.PRNGKey(7),
                                                                            400)])
        single_samples = np.stack([as_array(one(*start(k))[0])
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


def test_sgd_meta_optimizer_steps_by_the_rate_times_the_clipped_gradient():
    """meta.optimizer sgd: eta moves by -lr x g, g clipped to global norm clip_norm; Adam's first
    step is -lr x sign(g) whatever g's scale (why its expected step grows with the SNR)."""
    from mgrl.agent import make_meta_optimizer
    from mgrl.config import MetaConfig

    eta = {"gamma": jnp.asarray(0.0), "lambda": jnp.asarray(0.0)}
    for grad, clipped in (({"gamma": 0.003, "lambda": -0.004}, (0.003, -0.004)),
                          ({"gamma": 0.3, "lambda": -0.4}, (0.06, -0.08))):  # norm 0.5 -> 0.1
        grad = {p: jnp.asarray(v) for p, v in grad.items()}
        sgd = make_meta_optimizer(MetaConfig(optimizer="sgd", learning_rate=20.0, clip_norm=0.1))
        updates, _ = sgd.update(grad, sgd.init(eta), eta)
        np.testing.assert_allclose([updates["gamma"], updates["lambda"]],
                                   [-20.0 * c for c in clipped], rtol=1e-6)
        adam = make_meta_optimizer(MetaConfig(optimizer="adam", learning_rate=0.03, clip_norm=0.1))
        updates, _ = adam.update(grad, adam.init(eta), eta)
        np.testing.assert_allclose([updates["gamma"], updates["lambda"]], [-0.03, 0.03], rtol=1e-4)


def test_a_scheme_with_its_own_meta_optimizer_or_rate_is_its_own_run():
    """schemes.<name>.meta_learning_rate / meta_optimizer override meta's for that scheme's runs;
    such a scheme is an intervention arm (no C3/C4 row), never an alias of the scheme it copies."""
    from mgrl.runs import intervention_schemes

    cfg = tiny_config(horizons=[1, 2], schemes={
        "last": {"kind": "last"}, "uniform": {"kind": "uniform"},
        "last_lr": {"kind": "last", "meta_learning_rate": 0.09},
        "sgd": {"kind": "last", "meta_optimizer": "sgd", "meta_learning_rate": 20.0}})
    assert intervention_schemes(cfg) == ["last_lr", "sgd"]
    assert mixing_schemes(cfg) == ["last", "uniform", "lambda_0.5"]  # tiny_config's third
    assert run_config(cfg, 2, "last_lr").meta.learning_rate == 0.09
    sgd = run_config(cfg, 2, "sgd").meta
    assert (sgd.optimizer, sgd.learning_rate) == ("sgd", 20.0)
    assert run_config(cfg, 2, "last").meta == cfg.meta
    assert run_config(run_config(cfg, 2, "sgd"), 2, "sgd") == run_config(cfg, 2, "sgd")
    assert not any(alias in ("last_lr", "sgd") for _, alias in scheme_aliases(cfg))
    with pytest.raises(ConfigError, match="schemes.sgd.meta_optimizer"):
        tiny_config(schemes={"sgd": {"kind": "last", "meta_optimizer": "rmsprop"}})
    with pytest.raises(ConfigError, match="meta.sample_window"):
        tiny_config(meta={"sample_window": "partial"})


def test_a_scheme_runs_only_at_its_own_horizons():
    from mgrl.runs import distinct_training_runs

    cfg = tiny_config(horizons=[1, 2], schemes={"last": {"kind": "last"},
                                                "sgd": {"kind": "last", "meta_optimizer": "sgd",
                                                        "horizons": [2]}})
    assert (2, "sgd") in distinct_training_runs(cfg)
    assert (1, "sgd") not in distinct_training_runs(cfg)
    with pytest.raises(ConfigError, match=r"schemes.sgd.horizons.*\[3\]"):
        tiny_config(horizons=[1, 2], schemes={"sgd": {"kind": "last", "horizons": [3]}})
