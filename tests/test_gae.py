"""GAE against advantages computed by hand, including episode ends, with and without jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mgrl.losses import gae_advantages


def hand_gae(r, done, values, gamma, lam):
    """Straightforward backward loop: the definition, written independently of the scan."""
    T = len(r)
    adv = np.zeros(T)
    next_adv = 0.0
    for t in reversed(range(T)):
        nonterminal = 1.0 - done[t]
        delta = r[t] + gamma * nonterminal * values[t + 1] - values[t]
        next_adv = delta + gamma * lam * nonterminal * next_adv
        adv[t] = next_adv
    return adv


@pytest.mark.parametrize("use_jit", [False, True])
def test_gae_matches_hand_computed_values(use_jit):
    # T = 4, episode ends after step 1 (index 1): no bootstrap across it.
    r = jnp.array([1.0, 0.0, 2.0, 0.5])
    done = jnp.array([0.0, 1.0, 0.0, 0.0])
    values = jnp.array([0.5, 0.25, 1.0, -0.5, 2.0])  # v(s_0..s_4)
    gamma, lam = 0.9, 0.8
    # By hand: delta = r + gamma (1-done) v_{t+1} - v_t
    #   delta_3 = 0.5 + 0.9*2.0 - (-0.5) = 2.8          A_3 = 2.8
    #   delta_2 = 2.0 + 0.9*(-0.5) - 1.0 = 0.55         A_2 = 0.55 + 0.72*2.8 = 2.566
    #   delta_1 = 0.0 + 0 - 0.25 = -0.25                A_1 = -0.25 (episode ended: trace cut)
    #   delta_0 = 1.0 + 0.9*0.25 - 0.5 = 0.725          A_0 = 0.725 + 0.72*(-0.25) = 0.545
    expected = np.array([0.545, -0.25, 2.566, 2.8])
    fn = jax.jit(gae_advantages) if use_jit else gae_advantages
    got = fn(r, gamma * (1.0 - done), values, lam)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got, hand_gae(r, done, values, gamma, lam), rtol=1e-6)


def test_gae_batched_and_limits():
    rng = np.random.default_rng(0)
    T, B = 6, 3
    r = rng.normal(size=(T, B))
    done = (rng.random((T, B)) < 0.3).astype(float)
    values = rng.normal(size=(T + 1, B))
    gamma, lam = 0.95, 0.7
    got = np.asarray(gae_advantages(jnp.asarray(r), jnp.asarray(gamma * (1 - done)),
                                    jnp.asarray(values), lam))
    for b in range(B):
        np.testing.assert_allclose(got[:, b], hand_gae(r[:, b], done[:, b], values[:, b], gamma, lam),
                                   rtol=1e-5, atol=1e-6)
    # lambda = 0: one-step TD errors; lambda = 1, no ends: discounted return minus baseline.
    td0 = gae_advantages(jnp.asarray(r), jnp.full((T, B), gamma), jnp.asarray(values), 0.0)
    np.testing.assert_allclose(td0, r + gamma * values[1:] - values[:-1], rtol=1e-5, atol=1e-6)
    mc = gae_advantages(jnp.asarray(r), jnp.full((T, B), gamma), jnp.asarray(values), 1.0)
    ret = values[-1]
    returns = np.zeros((T, B))
    for t in reversed(range(T)):
        ret = r[t] + gamma * ret
        returns[t] = ret
    np.testing.assert_allclose(mc, returns - values[:-1], rtol=1e-5, atol=1e-5)
