"""The environments against their definitions: the Discounting Chain from gymnax against bsuite's,
written out here in plain Python; unmasked Snake against the pinned Jumanji's own step.

bsuite (bsuite/environments/discounting_chain.py): the action at time 0 picks the context c; time
then advances by one per step; the reward is rewards[c] on the step that makes time equal
reward_timestep[c] = (1, 3, 10, 30, 100)[c], where rewards = 1 except 1.1 at mapping_seed; the
episode terminates on the step that makes time 100. Here: five environments, each starting with a
different first action, then fixed later actions, for two whole episodes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from conftest import tiny_config
from mgrl.env import CHAIN_STEPS, make_env

REWARD_TIMESTEP = (1, 3, 10, 30, 100)
EPISODE = 100


def bsuite_episode(first_action: int, mapping_seed: int):
    """(rewards [100], dones [100]) of one bsuite episode: plain Python, the definition."""
    rewards_of = [1.0] * 5
    rewards_of[mapping_seed] += 0.1
    context, rewards, dones = first_action, [], []
    for time in range(1, EPISODE + 1):  # the time after each step
        rewards.append(rewards_of[context] if time == REWARD_TIMESTEP[context] else 0.0)
        dones.append(time == EPISODE)
    return np.array(rewards), np.array(dones)


def test_discounting_chain_rewards_and_episode_end_equal_bsuite():
    mapping_seed = 3
    cfg = tiny_config(env={"name": "discounting_chain", "num_envs": 5, "mapping_seed": mapping_seed},
                      network={"conv_channels": []}).env
    env = make_env(cfg)
    steps = 2 * EPISODE
    # Environment b takes action b at time 0 of each episode, then (b + t) % 5 (ignored by bsuite).
    actions = np.array([[(b + t) % 5 for b in range(5)] for t in range(steps)], np.int32)
    actions[0] = actions[EPISODE] = np.arange(5)

    @jax.jit
    def run(key):
        carry = env.reset(key, 5)
        first = carry.observation
        carry, transitions = jax.lax.scan(env.step, carry, jnp.asarray(actions))
        return first, transitions

    first, tr = jax.device_get(run(jax.random.PRNGKey(0)))
    assert env.num_actions == 5 and env.observation_shape == ((5 + 1) * (CHAIN_STEPS + 1),)
    start = np.zeros(env.observation_shape)
    start[0] = 1.0  # context -1, time 0: the first state
    np.testing.assert_array_equal(first, np.tile(start, (5, 1)))
    for b in range(5):
        rewards, dones = bsuite_episode(b, mapping_seed)
        np.testing.assert_allclose(tr.reward[:, b], np.concatenate([rewards, rewards]), rtol=1e-6)
        np.testing.assert_array_equal(tr.done[:, b], np.concatenate([dones, dones]).astype(float))
        # One reward per episode: the completed return is it (1.1 for the bonus chain), length 100.
        ends = np.flatnonzero(tr.done[:, b])
        np.testing.assert_allclose(tr.completed_return[ends, b], [rewards.sum()] * 2, rtol=1e-6)
        np.testing.assert_array_equal(tr.completed_length[ends, b], [EPISODE, EPISODE])
        # The observation is the one-hot of (context + 1, time): after step t of the first episode
        # the agent sees context b at time t + 1; after the last step, the next episode's start.
        seen = np.argmax(tr.observation[:, b], axis=-1)
        expected = [(0 if t % EPISODE == 0 else (b + 1) * (CHAIN_STEPS + 1) + t % EPISODE)
                    for t in range(steps)]
        np.testing.assert_array_equal(seen, expected)
    assert {tuple(bsuite_episode(a, mapping_seed)[0].nonzero()[0]) for a in range(5)} == {
        (t - 1,) for t in REWARD_TIMESTEP}


def test_exact_value_is_the_discounted_return_of_bsuite_episodes():
    """agent.critic exact: V_gamma at every state of every chain is the gamma-discounted sum of
    bsuite's rewards from that state on, and at the start state the policy-weighted mean of the
    chains' discounted returns."""
    mapping_seed, gamma = 3, 0.93
    cfg = tiny_config(env={"name": "discounting_chain", "num_envs": 5, "mapping_seed": mapping_seed},
                      network={"conv_channels": []}).env
    env = make_env(cfg)
    probs = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    returns = []
    for chain in range(5):
        rewards, _ = bsuite_episode(chain, mapping_seed)
        discounted = [sum(gamma ** k * r for k, r in enumerate(rewards[t:])) for t in range(EPISODE)]
        returns.append(discounted[0])
        one_hot = np.zeros((EPISODE - 1,) + env.observation_shape, np.float32)
        one_hot[np.arange(EPISODE - 1), (chain + 1) * (CHAIN_STEPS + 1) + np.arange(1, EPISODE)] = 1
        exact = env.exact_value(jnp.asarray(one_hot), jnp.tile(probs, (EPISODE - 1, 1)), gamma)
        np.testing.assert_allclose(np.asarray(exact), discounted[1:], rtol=1e-5, atol=1e-7)
    start = np.zeros(env.observation_shape, np.float32)
    start[0] = 1.0
    np.testing.assert_allclose(float(env.exact_value(jnp.asarray(start), jnp.asarray(probs), gamma)),
                               float(np.dot(probs, returns)), rtol=1e-5)


def test_an_illegal_snake_move_ends_the_episode_as_jumanjis_step_says():
    """Unmasked (the authors' task): a move into a wall or the body ends the episode exactly as the
    pinned Jumanji's own ``step`` decides (``done = ~is_valid | ...``), with its reward; the
    environment then restarts, and the recorded episode return and length are the episode's."""
    from jumanji.environments import Snake

    cfg = tiny_config(env={"num_rows": 5, "num_cols": 5, "time_limit": 50, "num_envs": 8}).env
    env = make_env(cfg)
    snake = Snake(num_rows=5, num_cols=5, time_limit=50)
    carry = jax.jit(env.reset, static_argnums=1)(jax.random.PRNGKey(3), 8)
    illegal = np.argmin(np.asarray(carry.action_mask), axis=1)  # a masked move where there is one
    has_illegal = ~np.asarray(carry.action_mask).all(axis=1)
    assert has_illegal.any()  # some heads start on the border
    carry2, tr = jax.jit(env.step)(carry, jnp.asarray(illegal, jnp.int32))
    for b in np.flatnonzero(has_illegal):
        state_b = jax.tree.map(lambda x: x[b], carry.env_state)
        _, ts = snake.step(state_b, jnp.int32(illegal[b]))
        assert bool(ts.last()) and float(ts.discount) == 0.0  # Jumanji: a termination
        assert float(tr.done[b]) == 1.0 and float(tr.reward[b]) == float(ts.reward)
        assert float(tr.completed_length[b]) == 1.0  # one step, then the end
        assert float(carry2.episode_length[b]) == 0.0  # the next episode has begun
        assert np.asarray(carry2.action_mask[b]).dtype == bool


def test_an_unmasked_policy_gives_every_move_positive_probability():
    from mgrl.config import NetworkConfig
    from mgrl.networks import make_actor_critic

    grid = jax.random.uniform(jax.random.PRNGKey(0), (3, 5, 5, 5))
    mask = jnp.ones((3, 4), bool).at[:, 1].set(False)
    for mask_illegal in (True, False):
        net = make_actor_critic(NetworkConfig((4,), 2, (8,), (8,), mask_illegal=mask_illegal))
        params = net.init(jax.random.PRNGKey(1), grid, mask)
        probs = np.asarray(jax.nn.softmax(net.apply(params, grid, mask)[0]))
        assert (probs[:, 1] > 1e-3).all() != mask_illegal  # the illegal move: 0 only when masked
        assert (probs[:, [0, 2, 3]] > 1e-3).all()
