"""Vectorised environments with auto-reset and completed-episode statistics.

Two kept JAX packages, built from explicit settings (``env.name``, never a registered name):

* ``snake``: Jumanji's ``Snake`` (the paper's environment). Observation: the grid
  [rows, cols, 5] (body, head, tail, fruit, body order); 4 actions with a legal-action mask.
* ``discounting_chain``: bsuite's Discounting Chain as gymnax ships it (the outer-value-function
  paper's toy problem). The first action a in {0..4} picks a chain; the episode lasts 100 steps and
  pays one reward, ``rewards[a]`` = 1 (1.1 for ``a = env.mapping_seed``), at step
  ``reward_timestep[a]`` = (1, 3, 10, 30, 100)[a]. A discount gamma values chain a at
  gamma^(t_a - 1) rewards[a], so a myopic gamma prefers the 1-step chain, gamma -> 1 the 1.1 one.
  Observation: the one-hot of the state (context + 1, time), [6 * 101] (a linear network on it is
  tabular); gymnax's own observation [context, time / 100] is a function of it. All actions legal.

B environments are one batch axis (``jax.vmap``). An environment whose episode ends is reset in the
same step; the transition keeps the terminal reward and ``done = 1``, and the observation becomes
the first one of the next episode. Episodes that end at the time limit are treated like
terminations (no bootstrap): Snake's limit is rarely reached on small boards, and the Discounting
Chain's 100 steps are its definition (bsuite ends the episode there).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp

from mgrl.config import ENV_NAMES, EnvConfig

__all__ = ["ENV_NAMES", "EnvCarry", "Environment", "Transition", "make_env", "random_policy_stats"]

CHAIN_STEPS = 100  # bsuite / gymnax DiscountingChain: max_steps_in_episode
CHAIN_ACTIONS = 5


class EnvCarry(NamedTuple):
    """State of B environments between steps.

    Attributes:
      env_state: the package's state with a leading batch axis [B, ...].
      observation: current observation, [B, *observation_shape] float32.
      action_mask: legal actions in the current observation, [B, A] bool.
      episode_return: return accumulated so far in each running episode, [B] float32.
      episode_length: steps so far in each running episode, [B] int32.
    """

    env_state: chex.ArrayTree
    observation: chex.Array
    action_mask: chex.Array
    episode_return: chex.Array
    episode_length: chex.Array


class Transition(NamedTuple):
    """One vectorised step; every leaf has a leading [B] axis (stacked to [T, B] by rollouts)."""

    observation: chex.Array  # observation the action was taken in, [B, *observation_shape]
    action_mask: chex.Array  # [B, A] bool
    action: chex.Array  # [B] int32
    reward: chex.Array  # [B] float32
    done: chex.Array  # [B] float32, 1 where the episode ended with this step
    completed_return: chex.Array  # [B], return of the episode that ended here, else 0
    completed_length: chex.Array  # [B], its length, else 0


class Environment:
    """B copies of one environment: ``reset(key, B) -> EnvCarry`` and
    ``step(carry, action [B]) -> (EnvCarry, Transition)``, pure and jittable.

    Built from per-environment functions: ``reset_one(key) -> (state, observation, mask)``,
    ``step_one(state, action) -> (state, observation, mask, reward, done)`` and
    ``reset_key(state) -> key`` (the key of the reset that follows an episode's end, taken from the
    state, so the whole process is a deterministic function of the initial key and the actions).
    ``exact_value(observation [..., D], probs [..., A], gamma) -> [...]``, where the environment
    has one: the value of each observation's state under discount gamma, for a policy whose only
    choice is the one ``probs`` gives at a start state (what ``agent.critic: exact`` uses).
    """

    def __init__(self, name: str, num_actions: int, observation_shape: tuple[int, ...],
                 reset_one: Callable, step_one: Callable, reset_key: Callable,
                 exact_value: Callable | None = None):
        self.name = name
        self.exact_value = exact_value
        self.num_actions = num_actions
        self.observation_shape = observation_shape
        self._reset_one, self._step_one, self._reset_key = reset_one, step_one, reset_key

    def reset(self, key: chex.PRNGKey, num_envs: int) -> EnvCarry:
        """Reset ``num_envs`` environments with independent keys."""
        state, observation, mask = jax.vmap(self._reset_one)(jax.random.split(key, num_envs))
        return EnvCarry(state, observation, mask, jnp.zeros((num_envs,), jnp.float32),
                        jnp.zeros((num_envs,), jnp.int32))

    def step(self, carry: EnvCarry, action: chex.Array) -> tuple[EnvCarry, Transition]:
        """Step every environment with ``action`` [B]; reset those whose episode ended."""
        state, observation, mask, reward, done = jax.vmap(self._step_one)(carry.env_state, action)
        reward = reward.astype(jnp.float32)
        ep_return = carry.episode_return + reward
        ep_length = carry.episode_length + 1
        reset_state, reset_observation, reset_mask = jax.vmap(self._reset_one)(
            jax.vmap(self._reset_key)(state))

        def select(new, old):
            where = jnp.reshape(done, done.shape + (1,) * (new.ndim - 1))
            return jnp.where(where, new, old)

        donef = done.astype(jnp.float32)
        transition = Transition(
            observation=carry.observation, action_mask=carry.action_mask, action=action,
            reward=reward, done=donef, completed_return=ep_return * donef,
            completed_length=ep_length * done.astype(jnp.int32))
        new_carry = EnvCarry(
            env_state=jax.tree.map(select, reset_state, state),
            observation=select(reset_observation, observation),
            action_mask=select(reset_mask, mask),
            episode_return=jnp.where(done, 0.0, ep_return),
            episode_length=jnp.where(done, 0, ep_length))
        return new_carry, transition


def make_env(cfg: EnvConfig) -> Environment:
    """The environment ``cfg.name`` (:data:`ENV_NAMES`) built from ``cfg``'s explicit settings."""
    if cfg.name == "snake":
        return _snake(cfg)
    if cfg.name == "discounting_chain":
        return _discounting_chain(cfg)
    raise ValueError(f"unknown environment {cfg.name!r}")  # rejected by config validation


def _snake(cfg: EnvConfig) -> Environment:
    from jumanji.environments import Snake

    snake = Snake(num_rows=cfg.num_rows, num_cols=cfg.num_cols, time_limit=cfg.time_limit)

    def reset_one(key):
        state, ts = snake.reset(key)
        return state, ts.observation.grid.astype(jnp.float32), ts.observation.action_mask

    def step_one(state, action):
        state, ts = snake.step(state, action)
        return (state, ts.observation.grid.astype(jnp.float32), ts.observation.action_mask,
                ts.reward, ts.last())

    return Environment("snake", 4, (cfg.num_rows, cfg.num_cols, 5), reset_one, step_one,
                       lambda state: jax.random.split(state.key)[1])


def _discounting_chain(cfg: EnvConfig) -> Environment:
    from gymnax.environments.bsuite.discounting_chain import DiscountingChain

    chain = DiscountingChain(n_actions=CHAIN_ACTIONS, mapping_seed=cfg.mapping_seed)
    params = chain.default_params
    if int(params.max_steps_in_episode) != CHAIN_STEPS:  # the one-hot encoding assumes it
        raise RuntimeError(f"gymnax's DiscountingChain lasts {params.max_steps_in_episode} steps, "
                           f"not {CHAIN_STEPS}: the pinned gymnax changed")
    num_states = (CHAIN_ACTIONS + 1) * (CHAIN_STEPS + 1)

    def encode(state) -> chex.Array:
        index = (state.context + 1) * (CHAIN_STEPS + 1) + state.time
        return jax.nn.one_hot(index, num_states, dtype=jnp.float32)

    mask = jnp.ones((CHAIN_ACTIONS,), bool)

    def reset_one(key):
        _, state = chain.reset_env(key, params)
        return (state, key), encode(state), mask

    def step_one(carry, action):
        state, key = carry
        key, step_key = jax.random.split(key)
        _, state, reward, terminated, _ = chain.step_env(step_key, state, action, params)
        # bsuite terminates the episode at step 100; gymnax calls that a truncation.
        done = jnp.logical_or(terminated, chain.is_truncated(state, params))
        return (state, key), encode(state), mask, reward, done

    steps = jnp.asarray(params.reward_timestep)
    rewards = jnp.ones((CHAIN_ACTIONS,)).at[cfg.mapping_seed].set(params.optimal_return)

    def exact_value(observation, probs, gamma):
        """V_gamma(c, t) = gamma^(t_c - 1 - t) rewards[c] while t < t_c (the reward comes with the
        step to time t_c), else 0; at the start state sum_a pi(a) gamma^(t_a - 1) rewards[a]."""
        index = jnp.argmax(observation, axis=-1)
        context, time = index // (CHAIN_STEPS + 1) - 1, index % (CHAIN_STEPS + 1)
        chain = jnp.maximum(context, 0)
        to_go = steps[chain] - 1 - time
        chain_value = jnp.where(to_go >= 0, gamma ** jnp.maximum(to_go, 0) * rewards[chain], 0.0)
        start_value = jnp.sum(probs * gamma ** (steps - 1) * rewards, axis=-1)
        return jnp.where(context < 0, start_value, chain_value)

    return Environment("discounting_chain", CHAIN_ACTIONS, (num_states,), reset_one, step_one,
                       lambda carry: carry[1], exact_value)


def random_policy_stats(cfg: EnvConfig, key: chex.PRNGKey, num_steps: int) -> dict[str, Any]:
    """Reward per step and mean completed-episode return of the uniform random legal policy.

    The reference a learning agent must beat: ``num_steps`` steps of ``cfg.num_envs`` environments.
    """
    env = make_env(cfg)

    @jax.jit
    def run(key):
        reset_key, act_key = jax.random.split(key)
        carry = env.reset(reset_key, cfg.num_envs)

        def one(carry, k):
            logits = jnp.where(carry.action_mask, 0.0, -1e9)
            action = jax.random.categorical(k, logits).astype(jnp.int32)
            return env.step(carry, action)

        _, tr = jax.lax.scan(one, carry, jax.random.split(act_key, num_steps))
        episodes = jnp.sum(tr.done)
        return (jnp.mean(tr.reward), jnp.sum(tr.completed_return) / jnp.maximum(episodes, 1),
                episodes)

    reward_rate, episode_return, episodes = jax.device_get(run(key))
    return {"reward_per_step": float(reward_rate), "episode_return": float(episode_return),
            "episodes": int(episodes)}
