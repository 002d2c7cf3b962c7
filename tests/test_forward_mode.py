"""Forward-mode meta-gradients in float64: equal to reverse mode and to finite differences, and one
forward pass at K gives every weighting scheme's meta-gradient at every horizon k <= K.

Every check uses fixed keys (the rollouts are the same in every evaluation), a state one meta-step
past initialisation (non-trivial optimiser state), both meta-parameters, and runs with the critic's
outer advantages and with the outer critic's.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from mgrl.estimators.weighting import weighted_samples
from mgrl.config import META_PARAMETERS, ConfigError
from mgrl.estimators import scheme_weights
from mgrl.runs import scheme_of
from mgrl.train import make_agent
from test_estimators import OUTER

HORIZONS = (1, 2, 4)
SCHEMES = ("last", "uniform", "lambda_0.5", "custom")
CUSTOM = {1: (1.0,), 2: (0.3, 0.7), 4: (0.1, 0.2, 0.3, 0.4)}  # arbitrary non-negative, sum 1
KEY = jax.random.PRNGKey(11)


def scheme_matrix(cfg, horizon: int) -> np.ndarray:
    """[S, K]: the weights of every scheme of SCHEMES at K."""
    rows = [scheme_weights(scheme_of(cfg, s), horizon) for s in SCHEMES[:-1]] + [CUSTOM[horizon]]
    return np.asarray(rows, np.float64)


def as_array(grad) -> jax.Array:
    return jnp.stack([grad[p] for p in META_PARAMETERS])


@pytest.fixture(scope="module", params=[False, True], ids=["critic", "outer_critic"])
def gradients(request):
    """From one state and key: reverse-mode meta-gradients [S, D] of every scheme at every K, the
    forward-mode training meta-gradients [S, D] at K_max, the forward outer-loss Jacobian
    [K_max, D], and central differences of the meta-loss at K_max (custom weights)."""
    with jax.enable_x64(True):
        agent_settings = {"learning_rate": 1e-2, **(OUTER if request.param else {})}
        cfg = tiny_config(agent=agent_settings, train={"dtype": "float64"},
                          meta={"learn": ["gamma", "lambda"]})
        forward_cfg = dataclasses.replace(cfg, meta=dataclasses.replace(cfg.meta, gradient="forward"))
        reverse, forward = make_agent(cfg), make_agent(forward_cfg)
        state = jax.jit(reverse.init)(jax.random.PRNGKey(3))
        state, _ = jax.jit(reverse.meta_step)(state, jnp.ones((1,)))
        k_max = max(HORIZONS)

        def per_scheme(agent, horizon):
            """One program per (agent, K): the scheme weights are a traced argument."""
            gradient = jax.jit(lambda w: agent.meta_gradient(state, KEY, w))
            grads, outputs = [], []
            for w in scheme_matrix(cfg, horizon):
                grad, (_, out) = gradient(jnp.asarray(w))
                grads.append(np.asarray(as_array(grad)))
                outputs.append(out)
            return np.stack(grads), outputs

        out = {"cfg": cfg, "reverse": {h: per_scheme(reverse, h)[0] for h in HORIZONS}}
        out["forward"], outputs = per_scheme(forward, k_max)
        jacobian, _ = jax.jit(forward.outer_loss_jacobian, static_argnums=2)(state, KEY, k_max)
        out["jacobian"] = np.asarray(jacobian)

        # Central differences of the custom scheme's meta-loss, outer advantages frozen at eta.
        weights = jnp.asarray(CUSTOM[k_max])
        advantages = outputs[SCHEMES.index("custom")][4]["outer_advantages"]
        meta_loss = jax.jit(lambda eta: forward.meta_loss(eta, state, KEY, weights, advantages)[0])
        eps = 1e-5
        out["finite_differences"] = np.array([
            (float(meta_loss(dict(state.eta, **{p: state.eta[p] + eps})))
             - float(meta_loss(dict(state.eta, **{p: state.eta[p] - eps})))) / (2 * eps)
            for p in META_PARAMETERS])
        yield out


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(b)))


def test_forward_mode_training_meta_gradient_equals_reverse_mode(gradients):
    """meta.gradient: forward (jax.jacfwd of the meta-loss) at K_max, every scheme; the other
    horizons are checked in forward mode through the Jacobian (test below)."""
    reverse, forward = gradients["reverse"][max(HORIZONS)], gradients["forward"]
    assert np.all(np.isfinite(reverse)) and np.all(np.abs(reverse) > 0)
    assert relative_error(forward, reverse) < 1e-8, (forward, reverse)
    # not vacuous: the schemes' meta-gradients differ at K_max
    assert not np.allclose(reverse[0], reverse[1], rtol=1e-3)


def test_forward_mode_equals_central_finite_differences(gradients):
    forward = gradients["forward"][SCHEMES.index("custom")]
    assert relative_error(forward, gradients["finite_differences"]) < 1e-4


def test_one_forward_pass_gives_every_scheme_at_every_horizon(gradients):
    """w @ J[:k] from the K_max-window's forward-mode Jacobian equals each (k, scheme)'s own
    reverse-mode meta-gradient with the same key (k = 1, 2, 4): the first k steps of a K-window
    are the k-window."""
    jacobian = gradients["jacobian"]
    assert jacobian.shape == (max(HORIZONS), len(META_PARAMETERS))
    for horizon in HORIZONS:  # through the probe's own combination of the one-pass Jacobians
        from_one_pass = np.stack([weighted_samples(jacobian[None], w)[0]
                                  for w in scheme_matrix(gradients["cfg"], horizon)])
        assert relative_error(from_one_pass, gradients["reverse"][horizon]) < 1e-8, horizon


def test_forward_mode_with_remat_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError) as err:
        tiny_config(meta={"gradient": "forward", "remat": True})
    assert err.value.key == "meta.remat"
