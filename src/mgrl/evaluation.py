"""Evaluation episodes, apart from training: the return of the current policy on fresh episodes,
acting greedily (argmax) and by sampling, as the authors' evaluator does ([2022]
``snake/training/evaluator.py``: both policies from the same reset key, every episode run to its
end).

``evaluate(params, key) -> {"eval/return_greedy": [], "eval/return_sampled": []}``: N environments
reset with ``key``'s first half, each run for ``max_steps`` steps; an environment's return is the
reward it collects until its first episode ends (later episodes, which the auto-reset starts, are
ignored). Training never sees these keys or steps, so a run with evaluation on trains bit for bit
as one with it off.
"""

from __future__ import annotations

from typing import Callable

import chex
import jax
import jax.numpy as jnp

from mgrl.env import Environment
from mgrl.networks import ActorCritic

EVAL_STREAM = 0x5EED_E7A1  # folded into a seed's root key: the evaluation keys' own stream
METRICS = ("eval/return_greedy", "eval/return_sampled")


def evaluation_key(seed: int, interval: int) -> chex.PRNGKey:
    """The key of the evaluation after ``interval`` for ``seed``: a stream training never draws
    from (training splits ``PRNGKey(seed)``; this folds ``EVAL_STREAM`` into it, then the
    interval)."""
    root = jax.random.fold_in(jax.random.PRNGKey(seed), EVAL_STREAM)
    return jax.random.fold_in(root, interval)


def first_episode_returns(env: Environment, policy: Callable, key: chex.PRNGKey,
                          num_episodes: int, max_steps: int) -> tuple[chex.Array, chex.Array]:
    """(return of each environment's first episode [N], whether it ended within max_steps [N]):
    ``policy(observation [N, ...], action_mask [N, A], key) -> action [N]``."""
    reset_key, act_key = jax.random.split(key)
    carry = env.reset(reset_key, num_episodes)

    def step(state, step_key):
        carry, total, running = state
        action = policy(carry.observation, carry.action_mask, step_key)
        carry, tr = env.step(carry, action)
        total = total + running * tr.reward
        running = running * (1.0 - tr.done)
        return (carry, total, running), None

    init = (carry, jnp.zeros(num_episodes, jnp.float32), jnp.ones(num_episodes, jnp.float32))
    (_, total, running), _ = jax.lax.scan(step, init, jax.random.split(act_key, max_steps))
    return total, running == 0.0


def make_evaluator(env: Environment, network: ActorCritic, num_episodes: int,
                   max_steps: int) -> Callable[[object, chex.PRNGKey], dict]:
    """``evaluate(params, key)``: mean first-episode return of ``num_episodes`` environments,
    greedy and sampled (:data:`METRICS`), both from the same resets."""

    def evaluate(params, key):
        def greedy(observation, mask, _):
            return jnp.argmax(network.apply(params, observation, mask)[0], axis=-1).astype(jnp.int32)

        def sampled(observation, mask, step_key):
            logits = network.apply(params, observation, mask)[0]
            return jax.random.categorical(step_key, logits).astype(jnp.int32)

        out = {}
        for name, policy in zip(METRICS, (greedy, sampled)):
            returns, _ = first_episode_returns(env, policy, key, num_episodes, max_steps)
            out[name] = jnp.mean(returns)
        return out

    return evaluate
