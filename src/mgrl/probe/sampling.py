"""Meta-gradient samples from one state, one per key: one forward pass per key gives every
weighting's samples (:func:`sample_outer_loss_jacobians`, then
:func:`mgrl.estimators.weighting.weighted_samples`), a reverse pass per key any other kind's
(:func:`sample_meta_gradients`), and the ``returns`` reference (:func:`sample_return_references`).
Every sampler maps one compiled sample over the keys with :func:`over_keys`."""

from __future__ import annotations

import functools
from typing import Callable

import chex
import jax
import jax.numpy as jnp

from mgrl.agent import AgentState, MetaGradientAgent
from mgrl.config import META_PARAMETERS
from mgrl.losses import gae_advantages, rollout_outputs


def over_keys(one: Callable[[chex.PRNGKey], chex.Array], keys: chex.PRNGKey,
              samples_per_batch: int | None) -> chex.Array:
    """``one`` over ``keys`` [M, 2] -> [M, ...]: one ``vmap`` of all M (``samples_per_batch`` None
    or >= M), else a sequential ``lax.map`` over chunks of ``samples_per_batch`` vmapped samples
    (b = 1 is a compiled loop): memory O(b K) instead of O(M K), and on CPU faster, since vmapping
    per-sample parameters turns convolutions into grouped ones (benchmarks/probe_vmap.py). The
    samples are the same up to float rounding."""
    if samples_per_batch is None or samples_per_batch >= keys.shape[0]:
        return jax.vmap(one)(keys)
    return jax.lax.map(one, keys, batch_size=samples_per_batch)


@functools.partial(jax.jit, static_argnums=(0, 3), static_argnames="samples_per_batch")
def sample_outer_loss_jacobians(
    agent: MetaGradientAgent,
    state: AgentState,
    keys: chex.PRNGKey,
    horizon: int,
    samples_per_batch: int | None = None,
) -> chex.Array:
    """One forward pass per key: J [M, K, D], J[m, k-1] = d l_k / d eta of the K-window of
    ``keys[m]`` (columns :data:`META_PARAMETERS`), k = 1..K.

    :func:`mgrl.estimators.weighting.weighted_samples` turns it into every weighting scheme's samples at every horizon
    <= K. ``samples_per_batch`` as in :func:`sample_meta_gradients`; forward mode keeps no inner
    step, so memory does not grow with K.
    """

    def one_pass(key: chex.PRNGKey) -> chex.Array:
        jacobian, _ = agent.outer_loss_jacobian(state, key, horizon)
        return jacobian

    return over_keys(one_pass, keys, samples_per_batch)


def return_advantages(agent: MetaGradientAgent, params, env_carry, rollout, key: chex.PRNGKey,
                      steps: int, gamma) -> chex.Array:
    """A'_t = G_t - v(s_t) [T, B] on ``rollout`` (collected by ``params``), no gradient: G_t the
    return at gamma' = ``agent.outer_gamma`` to the end of s_t's episode, with ``params`` playing
    on from ``env_carry`` for ceil(steps / T) more rollouts (keys ``fold_in(key, 2**20 + i)``;
    an episode still running after them is truncated), and v the critic at ``params`` (an
    action-independent baseline: it moves no expected gradient; with an exact critic, the exact
    value at gamma)."""
    params = jax.lax.stop_gradient(params)
    num = -(-steps // agent.rollout_length)

    def play(carry, i):
        carry, more = agent.collect(params, carry, jax.random.fold_in(key, 2 ** 20 + i))
        return carry, (more.transitions.reward, more.transitions.done)

    _, (rewards, dones) = jax.lax.scan(play, env_carry, jnp.arange(num))
    tr = rollout.transitions
    rewards = jnp.concatenate([tr.reward, rewards.reshape((-1,) + rewards.shape[2:])])
    dones = jnp.concatenate([tr.done, dones.reshape((-1,) + dones.shape[2:])])

    # G_t = r_t + gamma' (1 - done_t) G_{t+1}: GAE with lambda = 1 and zero values.
    returns = gae_advantages(rewards, agent.agent_cfg.outer_gamma * (1.0 - dones),
                             jnp.zeros((rewards.shape[0] + 1,) + rewards.shape[1:], rewards.dtype),
                             1.0)
    logits, values, _ = rollout_outputs(agent.network.apply_rollout, params, rollout)
    if agent.exact_critic:
        values, _ = agent.exact_values(rollout, logits, gamma, None)
    return jax.lax.stop_gradient(returns[:tr.reward.shape[0]] - values[:-1])


@functools.partial(jax.jit, static_argnums=(0, 3, 4), static_argnames="samples_per_batch")
def sample_return_references(
    agent: MetaGradientAgent,
    state: AgentState,
    keys: chex.PRNGKey,
    horizon: int,
    steps: int,
    samples_per_batch: int | None = None,
) -> chex.Array:
    """The ``returns`` reference, [M, D]: per key, d L'(theta_K; R_K) / d eta of the K-window of
    the key with A'_K = :func:`return_advantages` (frozen), in forward mode. The window is the
    same as the estimates' (same key), so the samples stay paired."""
    last = jnp.zeros((horizon,), jax.tree.leaves(state.params)[0].dtype).at[-1].set(1.0)

    def one(key: chex.PRNGKey) -> chex.Array:
        _, outputs = agent.meta_loss(state.eta, state, key, last)
        params, _, env_carry, rollout, aux = outputs
        gamma, _ = agent.hyper_parameters(state.eta)
        frozen = aux["outer_advantages"].at[-1].set(
            return_advantages(agent, params, env_carry, rollout, key, steps, gamma))
        grad = jax.jacfwd(lambda eta: agent.meta_loss(eta, state, key, last, frozen)[0])(state.eta)
        return jnp.stack([grad[p] for p in META_PARAMETERS])

    return over_keys(one, keys, samples_per_batch)


@functools.partial(jax.jit, static_argnums=0, static_argnames="samples_per_batch")
def sample_meta_gradients(
    agent: MetaGradientAgent,
    state: AgentState,
    keys: chex.PRNGKey,
    weights: chex.Array,
    samples_per_batch: int | None = None,
) -> chex.Array:
    """M meta-gradient samples from one state, one per key: [M, 2] (columns gamma, lambda).

    g_m = grad_eta sum_k w_k L'(theta_k) with the window's rollouts drawn from ``keys[m]`` [M, 2];
    mapped over the keys by :func:`over_keys` (``samples_per_batch``). ``weights`` [K] is a traced
    argument, so one compiled program per (agent, K, M) serves every scheme. Gradients are raw
    (unmasked, unclipped) for every meta-parameter.
    """

    def one_sample(key: chex.PRNGKey) -> chex.Array:
        grad, _ = agent.meta_gradient(state, key, weights)
        return jnp.stack([grad[p] for p in META_PARAMETERS])

    return over_keys(one_sample, keys, samples_per_batch)
