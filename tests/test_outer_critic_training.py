"""The outer critic in training (float32 runs of the tiny board; its meta-gradient's finite-difference
check is in tests/test_estimators.py): on a fixed policy its value regresses to the
gamma'-discounted Monte Carlo return; a network that trains an outer critic without using it leaves
the actor-critic trajectory bit-identical.

A file of its own (moved from tests/test_estimators.py, same test names) so that pytest-xdist runs
it on another worker than that file's float64 programs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from conftest import tiny_config
from mgrl.train import make_agent
from mgrl.runs import uses_outer_critic
from test_estimators import OUTER
from test_train import run_intervals


def test_outer_critic_regresses_to_the_outer_discounted_monte_carlo_return():
    """A fixed policy (pg and entropy coefficients 0: the actor's gradient is zero) on a 5x5 board;
    the critic learns with gamma = 0.5, the outer critic with gamma' = 0.9. After 600 updates the
    outer critic's mean value of 256 fresh start states is within 25% of the gamma'-discounted Monte
    Carlo return of those states (one 60-step rollout each; 0.9^60 < 0.002), while the gamma = 0.5
    return, what the critic estimates, lies outside that tolerance (so the check can fail)."""
    cfg = tiny_config(
        horizons=[1],
        env={"num_rows": 5, "num_cols": 5, "time_limit": 100, "num_envs": 16, "rollout_length": 8},
        agent={"pg_coef": 0.0, "entropy_coef": 0.0, "optimizer": "adam", "learning_rate": 3e-3,
               "gamma_init": 0.5, "lambda_init": 0.9, "outer_gamma": 0.9, "outer_lambda": 0.9,
               **OUTER},
        meta={"learn": []},
        train={"num_intervals": 1, "inner_updates_per_interval": 150},
        probe={"reference_horizon": 1},
    )
    trainer, state, _ = run_intervals(cfg, 1, "a2c", [0], 4)
    agent = trainer.program.agent
    initial = trainer.init(jnp.asarray([0]))
    params = jax.tree.map(lambda x: x[0], state.params)
    grid, mask = state.rollout.transitions.observation[0], state.rollout.transitions.action_mask[0]
    np.testing.assert_array_equal(  # the policy stayed fixed
        agent.network.apply(params, grid, mask)[0],
        agent.network.apply(jax.tree.map(lambda x: x[0], initial.params), grid, mask)[0])

    @jax.jit
    def evaluate(key):
        reset_key, act_key = jax.random.split(key)
        carry = agent.env.reset(reset_key, 256)
        grid = jnp.stack([carry.observation, carry.observation])
        mask = jnp.stack([carry.action_mask, carry.action_mask])
        _, values, outer_values = agent.network.apply_rollout(params, grid, mask)

        def one(c, k):
            logits, _ = agent.network.apply(params, c.observation, c.action_mask)
            c, tr = agent.env.step(c, jax.random.categorical(k, logits).astype(jnp.int32))
            return c, (tr.reward, tr.done)

        _, (reward, done) = jax.lax.scan(one, carry, jax.random.split(act_key, 60))
        alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(done[:1]), 1.0 - done[:-1]]), axis=0)
        steps = jnp.arange(60.0)[:, None]
        returns = {g: jnp.mean(jnp.sum(g ** steps * alive * reward, axis=0)) for g in (0.5, 0.9)}
        return jnp.mean(values[0]), jnp.mean(outer_values[0]), returns

    critic_value, outer_value, mc = jax.device_get(evaluate(jax.random.PRNGKey(7)))
    tolerance = 0.25 * mc[0.9]
    print(f"outer critic {outer_value:.4f} vs MC(0.9) {mc[0.9]:.4f}; critic {critic_value:.4f} "
          f"vs MC(0.5) {mc[0.5]:.4f}")
    assert abs(outer_value - mc[0.9]) < tolerance
    assert abs(mc[0.5] - mc[0.9]) > tolerance  # the gamma'-return is what it learned
    assert abs(outer_value - critic_value) > tolerance


def test_training_an_unused_outer_critic_leaves_the_actor_critic_trajectory_unchanged(tiny):
    """The a2c baseline of a config whose schemes use the outer critic trains one (the probed states
    need it); it is a separate network, so every other metric is bit-identical to the run without."""
    with_outer = tiny_config(schemes={"last": {"kind": "last"},
                                      "last_oc": {"kind": "last", "outer_critic": True}},
                             agent={"outer_value_coef": 0.5})
    assert uses_outer_critic(with_outer, "a2c") and not uses_outer_critic(tiny, "a2c")
    _, _, plain = run_intervals(tiny, 1, "a2c", [0], 2)
    _, state, trained = run_intervals(with_outer, 1, "a2c", [0], 2)
    assert len(jax.tree.leaves(state.params)) > len(jax.tree.leaves(
        make_agent(tiny).network.init(jax.random.PRNGKey(0), state.env.observation[0, :1],
                                      state.env.action_mask[0, :1])))  # it has an outer critic
    for key in plain[-1]:
        if key == "loss/outer_value":
            assert np.isnan(plain[-1][key]).all() and np.isfinite(trained[-1][key]).all()
        elif key not in ("loss/outer_last", "loss/meta", "meta/outer_advantage_mean"):  # from A'
            np.testing.assert_array_equal(plain[-1][key], trained[-1][key], err_msg=key)
