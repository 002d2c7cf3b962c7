"""GAE and the A2C inner and outer losses.

Arrays carry a leading time axis T and any number of batch axes after it ([T, B] for rollouts).

Inner loss (trains theta, differentiable in gamma and lambda)::

    delta_t = r_t + gamma (1 - done_t) v(s_{t+1}) - v(s_t)
    A_t     = delta_t + gamma lambda (1 - done_t) A_{t+1}                    (GAE, Schulman et al. 2016)
    L(theta; gamma, lambda) = pg_coef   * mean[-log pi(a_t|s_t) A_t]
                            + value_coef * mean[0.5 (v(s_t) - (A_t + v(s_t)))^2]   (target held fixed in theta)
                            - entropy_coef * mean[H(pi(.|s_t))]

The values inside A_t are held fixed by the inner gradient (semi-gradient TD), but the dependence of
A_t on gamma and lambda is kept. This is what makes d theta_{k+1} / d eta non-zero: stopping gradients
on the whole target instead would silently zero the meta-gradient.

Outer loss (validation, Xu et al. 2018): the policy-gradient term only, with fixed gamma', lambda'
(usually 1, 1) and advantages held fixed; its gradient reaches eta through log pi_{theta_k}.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp

from mgrl.env import Transition


class Rollout(NamedTuple):
    """T on-policy steps of B environments, and the observation after the last step.

    Attributes:
      transitions: :class:`~mgrl.env.Transition` with leaves [T, B, ...].
      last_observation: observation after the last step, [B, ...] (for the bootstrap value).
      last_action_mask: its legal actions, [B, A].
    """

    transitions: Transition
    last_observation: chex.Array
    last_action_mask: chex.Array


class LossCoefficients(NamedTuple):
    pg: float
    value: float
    entropy: float


def gae_advantages(
    r_t: chex.Array, discount_t: chex.Array, values: chex.Array, lambda_: chex.Numeric
) -> chex.Array:
    """Generalised advantage estimates.

    Args:
      r_t: rewards, [T, ...].
      discount_t: gamma * (1 - done_t), [T, ...]; zero where an episode ended at step t.
      values: v(s_0) .. v(s_T), [T + 1, ...] (the last one bootstraps the truncated rollout).
      lambda_: scalar trace parameter in [0, 1].

    Returns:
      A_t, [T, ...]: A_t = delta_t + discount_t * lambda_ * A_{t+1}, A_T = 0.
    """
    chex.assert_equal_shape([r_t, discount_t])
    chex.assert_equal_shape([r_t, values[1:]])
    delta_t = r_t + discount_t * values[1:] - values[:-1]

    def backward(next_advantage, inputs):
        delta, discount = inputs
        advantage = delta + discount * lambda_ * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(delta_t[0]), (delta_t, discount_t), reverse=True
    )
    return advantages


ApplyFn = Callable[..., tuple[chex.Array, chex.Array]]


def critic_values(apply: ApplyFn, params, rollout: Rollout) -> chex.Array:
    """v(s_0) .. v(s_T) under ``params``, [T + 1, B] (s_T is the observation after the rollout)."""
    tr = rollout.transitions
    _, v_t = apply(params, tr.observation, tr.action_mask)
    _, v_last = apply(params, rollout.last_observation, rollout.last_action_mask)
    return jnp.concatenate([v_t, v_last[None]], axis=0)


def rollout_advantages(rollout: Rollout, values: chex.Array, gamma, lambda_) -> chex.Array:
    """GAE(gamma, lambda) advantages of a rollout given its values [T + 1, B]; returns [T, B]."""
    tr = rollout.transitions
    discount_t = gamma * (1.0 - tr.done.astype(values.dtype))
    return gae_advantages(tr.reward.astype(values.dtype), discount_t, values, lambda_)


def rollout_outputs(apply_rollout: ApplyFn, params, rollout: Rollout):
    """One network pass over a rollout: logits [T, B, 4] of s_0..s_{T-1}, values [T + 1, B] of
    s_0..s_T (the last bootstraps), and the outer critic's values [T + 1, B] (None without one)."""
    tr = rollout.transitions
    observation = jnp.concatenate([tr.observation, rollout.last_observation[None]], axis=0)
    mask = jnp.concatenate([tr.action_mask, rollout.last_action_mask[None]], axis=0)
    return apply_rollout(params, observation, mask)


def policy_terms(logits: chex.Array, actions: chex.Array):
    """log pi(a_t|s_t) [T, B] of the taken actions and the entropy H(pi(.|s_t)) [T, B]."""
    log_probs = jax.nn.log_softmax(logits)
    log_pi_a = jnp.take_along_axis(log_probs, actions[..., None], axis=-1)[..., 0]
    entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
    return log_pi_a, entropy


def a2c_loss_from_outputs(
    logits: chex.Array,
    values: chex.Array,
    target_values: chex.Array,
    rollout: Rollout,
    gamma: chex.Numeric,
    lambda_: chex.Numeric,
    coefs: LossCoefficients,
) -> tuple[chex.Array, dict[str, chex.Array]]:
    """Inner A2C loss from the network's outputs on a rollout; returns (loss, aux).

    Args:
      logits: policy logits [T, B, 4]; values: critic values [T + 1, B] (v(s_T) gets no gradient).
      target_values: the values inside the GAE targets, [T + 1, B]. The caller passes the same
        numbers as ``values`` but as a separate argument, so that the inner gradient holds them
        fixed (semi-gradient TD) while a meta-gradient around the whole update still sees their
        dependence on theta_k and hence on eta: the update map theta_{k+1} = U(theta_k, eta) is
        then differentiated exactly.
    """
    log_pi_a, entropy = policy_terms(logits, rollout.transitions.action)
    advantages = rollout_advantages(rollout, target_values, gamma, lambda_)
    targets = advantages + target_values[:-1]  # depends on gamma and lambda
    pg_loss = -jnp.mean(log_pi_a * advantages)
    value_loss = 0.5 * jnp.mean(jnp.square(values[:-1] - targets))
    entropy_mean = jnp.mean(entropy)
    loss = coefs.pg * pg_loss + coefs.value * value_loss - coefs.entropy * entropy_mean
    return loss, {"pg": pg_loss, "value": value_loss, "entropy": entropy_mean}


def a2c_inner_loss(
    params,
    rollout: Rollout,
    target_values: chex.Array,
    gamma: chex.Numeric,
    lambda_: chex.Numeric,
    apply: ApplyFn,
    coefs: LossCoefficients,
) -> tuple[chex.Array, dict[str, chex.Array]]:
    """L(theta; gamma, lambda) as a function of ``params``, target values given [T + 1, B].

    The two-pass reference form (critic evaluated once for the targets outside ``jax.grad``, once
    inside): the agent takes the same gradient from one pass (:meth:`MetaGradientAgent.inner_update`)
    and tests check the two agree.
    """
    tr = rollout.transitions
    logits, v_t = apply(params, tr.observation, tr.action_mask)
    values = jnp.concatenate([v_t, target_values[-1:]], axis=0)
    return a2c_loss_from_outputs(logits, values, target_values, rollout, gamma, lambda_, coefs)


def outer_pg_from_logits(logits: chex.Array, actions: chex.Array,
                         advantages: chex.Array) -> chex.Array:
    """Outer (validation) loss L'(theta) = -mean[log pi_theta(a_t|s_t) A'_t] from the logits [T, B, 4].

    ``advantages`` A' [T, B] (GAE with the outer gamma', lambda') are coefficients of the
    policy-gradient surrogate and carry no gradient: the meta-gradient is the policy-gradient
    estimate at theta_k chained through d theta_k / d eta.
    """
    log_pi_a, _ = policy_terms(logits, actions)
    return -jnp.mean(log_pi_a * jax.lax.stop_gradient(advantages))


def outer_pg_loss(params, rollout: Rollout, advantages: chex.Array, apply: ApplyFn) -> chex.Array:
    """:func:`outer_pg_from_logits` as a function of ``params`` (one policy pass over the rollout)."""
    tr = rollout.transitions
    logits, _ = apply(params, tr.observation, tr.action_mask)
    return outer_pg_from_logits(logits, tr.action, advantages)


def outer_value_loss(outer_values: chex.Array, target_values: chex.Array, rollout: Rollout,
                     outer_gamma: chex.Numeric, outer_lambda: chex.Numeric) -> chex.Array:
    """TD(lambda') loss of the outer critic (Bonnet, Midgley and Laterre 2022)::

        A'_t = GAE(gamma', lambda') of ``target_values`` [T + 1, B]
        loss = mean[0.5 (v'(s_t) - (A'_t + v'_target(s_t)))^2]

    ``outer_values`` [T + 1, B] are the outer critic's predictions (differentiated by the inner
    gradient; v'(s_T) gets none), ``target_values`` the same numbers passed separately so that the
    inner gradient holds the targets fixed (semi-gradient TD, as the critic's own term). gamma' and
    lambda' are fixed numbers, so the term does not depend on eta.
    """
    advantages = rollout_advantages(rollout, target_values, outer_gamma, outer_lambda)
    targets = advantages + target_values[:-1]
    return 0.5 * jnp.mean(jnp.square(outer_values[:-1] - targets))


def kl_matching(target_logits: chex.Array, logits: chex.Array) -> chex.Array:
    """BMG matching loss: mean over states of KL(pi_target(.|s) || pi(.|s)), logits [..., A].

        KL(p || q) = sum_a p_a (log p_a - log q_a)

    The target is held fixed (``stop_gradient``): the gradient reaches only ``logits``, through
    -sum_a p_a log q_a. Illegal actions carry the same large negative logit in both, so they have
    p_a = 0 and add nothing. Zero, with zero gradient, when the two policies are equal.
    """
    target_log_probs = jax.nn.log_softmax(jax.lax.stop_gradient(target_logits))
    log_probs = jax.nn.log_softmax(logits)
    kl = jnp.sum(jnp.exp(target_log_probs) * (target_log_probs - log_probs), axis=-1)
    return jnp.mean(kl)
