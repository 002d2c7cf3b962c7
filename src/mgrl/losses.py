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
      last_grid: observation after the last step, [B, rows, cols, 5] (for the bootstrap value).
      last_action_mask: its legal actions, [B, 4].
    """

    transitions: Transition
    last_grid: chex.Array
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
    _, v_t = apply(params, tr.grid, tr.action_mask)
    _, v_last = apply(params, rollout.last_grid, rollout.last_action_mask)
    return jnp.concatenate([v_t, v_last[None]], axis=0)


def rollout_advantages(rollout: Rollout, values: chex.Array, gamma, lambda_) -> chex.Array:
    """GAE(gamma, lambda) advantages of a rollout given its values [T + 1, B]; returns [T, B]."""
    tr = rollout.transitions
    discount_t = gamma * (1.0 - tr.done.astype(values.dtype))
    return gae_advantages(tr.reward.astype(values.dtype), discount_t, values, lambda_)


def _log_pi_and_entropy(apply: ApplyFn, params, rollout: Rollout):
    tr = rollout.transitions
    logits, v_t = apply(params, tr.grid, tr.action_mask)  # [T, B, 4], [T, B]
    log_probs = jax.nn.log_softmax(logits)
    log_pi_a = jnp.take_along_axis(log_probs, tr.action[..., None], axis=-1)[..., 0]  # [T, B]
    entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)  # [T, B]
    return log_pi_a, v_t, entropy


def a2c_inner_loss(
    params,
    rollout: Rollout,
    target_values: chex.Array,
    gamma: chex.Numeric,
    lambda_: chex.Numeric,
    apply: ApplyFn,
    coefs: LossCoefficients,
) -> tuple[chex.Array, dict[str, chex.Array]]:
    """Inner A2C loss L(theta; gamma, lambda) on one rollout; returns (loss, aux).

    ``target_values`` [T + 1, B] are the critic's values used inside the GAE targets. They are an
    argument, not recomputed here, so that ``jax.grad`` with respect to ``params`` holds them fixed
    (the semi-gradient of TD learning) while a meta-gradient taken around the whole update still
    sees their dependence on theta_k and therefore on eta: the update map
    theta_{k+1} = U(theta_k, eta) is then differentiated exactly.
    """
    log_pi_a, v_t, entropy = _log_pi_and_entropy(apply, params, rollout)
    advantages = rollout_advantages(rollout, target_values, gamma, lambda_)
    targets = advantages + target_values[:-1]  # depends on gamma and lambda
    pg_loss = -jnp.mean(log_pi_a * advantages)
    value_loss = 0.5 * jnp.mean(jnp.square(v_t - targets))
    entropy_mean = jnp.mean(entropy)
    loss = coefs.pg * pg_loss + coefs.value * value_loss - coefs.entropy * entropy_mean
    return loss, {"pg": pg_loss, "value": value_loss, "entropy": entropy_mean}


def outer_pg_loss(params, rollout: Rollout, advantages: chex.Array, apply: ApplyFn) -> chex.Array:
    """Outer (validation) loss L'(theta) = -mean[log pi_theta(a_t|s_t) A'_t].

    ``advantages`` A' [T, B] (GAE with the outer gamma', lambda') are coefficients of the
    policy-gradient surrogate and carry no gradient: the meta-gradient is the policy-gradient
    estimate at theta_k chained through d theta_k / d eta.
    """
    log_pi_a, _, _ = _log_pi_and_entropy(apply, params, rollout)
    return -jnp.mean(log_pi_a * jax.lax.stop_gradient(advantages))
