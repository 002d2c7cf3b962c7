"""Vectorised Jumanji Snake with auto-reset and completed-episode statistics.

B environments are one batch axis (``jax.vmap`` of the real Jumanji ``Snake``). An environment whose
episode ends is reset in the same step; the transition keeps the terminal reward and ``done = 1``,
and the observation becomes the first one of the next episode. Episodes that end at the time limit
are treated like terminations (no bootstrap): with a time limit of hundreds of steps on small boards
this is rare, and it keeps the rollout free of a second, terminal observation.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
from jumanji.environments import Snake

from mgrl.config import EnvConfig


class EnvCarry(NamedTuple):
    """State of B environments between steps.

    Attributes:
      env_state: Jumanji ``snake.types.State`` with a leading batch axis [B, ...].
      grid: current observation grid, [B, rows, cols, 5] float32.
      action_mask: legal actions in the current observation, [B, 4] bool.
      episode_return: return accumulated so far in each running episode, [B] float32.
      episode_length: steps so far in each running episode, [B] int32.
    """

    env_state: chex.ArrayTree
    grid: chex.Array
    action_mask: chex.Array
    episode_return: chex.Array
    episode_length: chex.Array


class Transition(NamedTuple):
    """One vectorised step; every leaf has a leading [B] axis (stacked to [T, B] by rollouts)."""

    grid: chex.Array  # observation the action was taken in, [B, rows, cols, 5]
    action_mask: chex.Array  # [B, 4] bool
    action: chex.Array  # [B] int32
    reward: chex.Array  # [B] float32
    done: chex.Array  # [B] float32, 1 where the episode ended with this step
    completed_return: chex.Array  # [B], return of the episode that ended here, else 0
    completed_length: chex.Array  # [B], its length, else 0


def make_snake(cfg: EnvConfig) -> Snake:
    """The Jumanji Snake built from explicit sizes."""
    return Snake(num_rows=cfg.num_rows, num_cols=cfg.num_cols, time_limit=cfg.time_limit)


def reset(env: Snake, key: chex.PRNGKey, num_envs: int) -> EnvCarry:
    """Reset ``num_envs`` environments with independent keys."""
    keys = jax.random.split(key, num_envs)
    state, ts = jax.vmap(env.reset)(keys)
    return EnvCarry(
        env_state=state,
        grid=ts.observation.grid.astype(jnp.float32),
        action_mask=ts.observation.action_mask,
        episode_return=jnp.zeros((num_envs,), jnp.float32),
        episode_length=jnp.zeros((num_envs,), jnp.int32),
    )


def step(env: Snake, carry: EnvCarry, action: chex.Array) -> tuple[EnvCarry, Transition]:
    """Step every environment with ``action`` [B]; reset those whose episode ended.

    The reset key of each environment comes from its own state's key, so the whole process is a
    deterministic function of the initial key and the actions.
    """
    state, ts = jax.vmap(env.step)(carry.env_state, action)
    reward = ts.reward.astype(jnp.float32)
    done = ts.last()
    ep_return = carry.episode_return + reward
    ep_length = carry.episode_length + 1

    reset_keys = jax.vmap(lambda k: jax.random.split(k)[1])(state.key)
    reset_state, reset_ts = jax.vmap(env.reset)(reset_keys)

    def select(new, old):
        mask = jnp.reshape(done, done.shape + (1,) * (new.ndim - 1))
        return jnp.where(mask, new, old)

    next_state = jax.tree.map(select, reset_state, state)
    next_grid = select(reset_ts.observation.grid, ts.observation.grid).astype(jnp.float32)
    next_mask = select(reset_ts.observation.action_mask, ts.observation.action_mask)
    donef = done.astype(jnp.float32)
    transition = Transition(
        grid=carry.grid,
        action_mask=carry.action_mask,
        action=action,
        reward=reward,
        done=donef,
        completed_return=ep_return * donef,
        completed_length=ep_length * done.astype(jnp.int32),
    )
    new_carry = EnvCarry(
        env_state=next_state,
        grid=next_grid,
        action_mask=next_mask,
        episode_return=jnp.where(done, 0.0, ep_return),
        episode_length=jnp.where(done, 0, ep_length),
    )
    return new_carry, transition


def random_policy_stats(cfg: EnvConfig, key: chex.PRNGKey, num_steps: int) -> dict[str, float]:
    """Reward per step and mean completed-episode return of the uniform random legal policy.

    The reference a learning agent must beat: ``num_steps`` steps of ``cfg.num_envs`` environments.
    """
    env = make_snake(cfg)

    @jax.jit
    def run(key):
        reset_key, act_key = jax.random.split(key)
        carry = reset(env, reset_key, cfg.num_envs)

        def one(carry, k):
            logits = jnp.where(carry.action_mask, 0.0, -1e9)
            action = jax.random.categorical(k, logits).astype(jnp.int32)
            return step(env, carry, action)

        _, tr = jax.lax.scan(one, carry, jax.random.split(act_key, num_steps))
        episodes = jnp.sum(tr.done)
        return (jnp.mean(tr.reward), jnp.sum(tr.completed_return) / jnp.maximum(episodes, 1),
                episodes)

    reward_rate, episode_return, episodes = jax.device_get(run(key))
    return {"reward_per_step": float(reward_rate), "episode_return": float(episode_return),
            "episodes": int(episodes)}
