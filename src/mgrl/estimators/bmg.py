"""``bmg``: bootstrapped meta-gradients (Flennerhag et al. 2021): match policies, not losses.

    theta_1..theta_K = K inner updates from the window's start (differentiated, as any kind)
    theta_T          = the target: L = ``bootstrap_steps`` updates from theta_K, no gradient
    meta_loss(eta)   = mean_{s in matched states} KL(pi_{theta_T}(.|s) || pi_{theta_K}(.|s))

``bootstrap_target`` (:data:`TARGETS`):

* ``outer`` (the default, :data:`DEFAULT_TARGET`; Flennerhag et al., [2022]'s ``bootstrap_l``):
  L - 1 inner-rule updates with the current eta on R_K..R_{K+L-2}, then one step on the outer
  loss L' (gamma', lambda', policy gradient only) at theta_{K+L-1} on R_{K+L-1}, taken by the inner
  optimiser's kind with its own state (``AgentState.bootstrap_opt_state``), which persists across
  meta-updates. The target is a look-ahead: the agent goes on from theta_K, R_K and the
  environments after R_K. Matched states (``matching_states``, :data:`MATCHING_STATES`):
  ``target`` (default, :data:`DEFAULT_MATCHING_STATES`) a fresh rollout of theta_T, collected with
  ``fold_in(key, K + L)``; ``window`` R_K. The look-ahead's rollouts (L - 1, plus the matched one)
  feed only the meta-gradient (``Estimator.lookahead_rollouts``).
* ``inner``: L inner-rule updates on R_K..R_{K+L-1}, which are the agent's next L updates (the
  window keeps them: ``Estimator.kept_updates``); matched states R_K.

Inner step k collects with ``fold_in(key, k)``: the first K steps equal those of a K-step window
with the same key. The defaults are filled in by :func:`resolve`, which every run's config records.
"""

from __future__ import annotations

import dataclasses
import functools

from mgrl.estimators import Estimator, no_state

KIND = "bmg"
TARGETS = ("outer", "inner")
MATCHING_STATES = ("target", "window")
BOOTSTRAP_ROLLOUTS = ("window", "fresh")
DEFAULT_TARGET = "outer"
DEFAULT_MATCHING_STATES = "target"
SETTINGS = {
    "bootstrap_steps": (int | None, None, "L, undifferentiated inner updates that make the target",
                        {"minimum": 1}),
    "bootstrap_target": (str | None, None, "outer (default; Flennerhag et al., [2022]) = L - 1 "
                         "inner-rule updates then one outer-loss step with its own persistent "
                         "optimiser state, a look-ahead; inner = L inner-rule updates that are the "
                         "agent's next L updates", {"enum": list(TARGETS)}),
    "bootstrap_rollout": (str | None, None, "the outer target's outer-loss step data: window "
                          "(default) = R_{K+L-1}, the look-ahead's own next rollout; fresh ([2022]) "
                          "= a new rollout of theta_{K+L-1} (counted in extra_env_steps)",
                          {"enum": list(BOOTSTRAP_ROLLOUTS)}),
    "matching_states": (str | None, None, "the outer target's matched states: target (default, [2022]) = "
                        "a fresh rollout of the target (its environment steps are counted in "
                        "extra_env_steps); window = R_K", {"enum": list(MATCHING_STATES)}),
}


def validate(scheme, horizons) -> list[tuple[str, str]]:
    problems = []
    if scheme.bootstrap_steps is None:
        problems.append(("bootstrap_steps", "the bmg kind needs bootstrap_steps L >= 1 (with L = 0 "
                         "the target is theta_K itself: the meta-loss and its gradient are zero)"))
    inner = (scheme.bootstrap_target or DEFAULT_TARGET) != "outer"
    if scheme.matching_states is not None and inner:
        problems.append(("matching_states", "only the outer bootstrap_target takes matching_states "
                         "(the inner target matches on R_K, the agent's own data)"))
    if scheme.bootstrap_rollout is not None and inner:
        problems.append(("bootstrap_rollout", "only the outer bootstrap_target takes "
                         "bootstrap_rollout (the inner target has no outer-loss step)"))
    return problems


def resolve(scheme):
    """``bootstrap_target`` and, for the outer target, ``matching_states`` filled in
    (``bootstrap_rollout`` is left unset at its default, window, so that runs made before it
    existed keep their config)."""
    target = scheme.bootstrap_target or DEFAULT_TARGET
    states = (scheme.matching_states or DEFAULT_MATCHING_STATES) if target == "outer" else None
    return dataclasses.replace(scheme, bootstrap_target=target, matching_states=states)


def estimator(scheme) -> Estimator:
    """The estimator of a resolved bmg scheme."""
    steps, target = int(scheme.bootstrap_steps), scheme.bootstrap_target
    states = scheme.matching_states if target == "outer" else "window"
    outer = target == "outer"
    fresh = outer and scheme.bootstrap_rollout == "fresh"
    return Estimator(
        kind=KIND,
        meta_loss=functools.partial(meta_loss, steps=steps, bootstrap_target=target,
                                    matching_states=states, fresh_step_rollout=fresh),
        init_state=_init_outer_step_state if outer else no_state,
        kept_updates=0 if outer else steps,
        lookahead_rollouts=(steps - 1 + (states == "target") + fresh) if outer else 0,
        is_weighting=False,
    )


def _init_outer_step_state(agent, params):
    """The outer-loss step's optimiser state: the inner optimiser's kind, its own state."""
    return agent.inner_opt.init(params)


def meta_loss(agent, eta, state, key, weights, outer_advantages=None, final_outer: bool = True,
              target=None, *, steps: int, bootstrap_target: str, matching_states: str,
              fresh_step_rollout: bool = False):
    """The matching loss of a window of K = len(weights) inner updates (the weights give only K).

    ``target`` = (target logits [T, B, A], matched rollout) replaces the bootstrapped one
    (finite-difference checks freeze it: it carries no gradient, so the frozen loss's exact
    gradient is the meta-gradient); ``outer_advantages`` and ``final_outer`` are unused.

    Returns (loss, (params, opt state, env carry, rollout, aux)); ``aux["outer"]`` and
    ``aux["outer_advantages"]`` are l_1..l_K and A'_1..A'_K (logged, not used), and
    ``aux["target_logits"]``, ``aux["matched"]`` the target (for freezing it); an ``outer`` target
    also returns its new optimiser state in ``aux["bootstrap_opt_state"]``.
    """
    import jax
    import jax.numpy as jnp

    from mgrl.losses import kl_matching, rollout_outputs

    gamma, lambda_ = agent.hyper_parameters(eta)
    K, L = weights.shape[0], steps
    init = (state.params, state.inner_opt_state, state.env, state.rollout)
    (params, opt_state, env_carry, rollout), aux = agent.inner_steps(
        gamma, lambda_, init, key, jnp.arange(K), None)
    last_outer, last_advantages, logits_k = agent.final_outer(params, rollout, None, gamma)
    outer = jnp.concatenate([aux["outer"][1:], last_outer[None]])
    outer_advantages = jnp.concatenate([aux["outer_advantages"][1:], last_advantages[None]])
    stop = jax.lax.stop_gradient
    if bootstrap_target == "inner":
        matched = rollout  # R_K: the states whose policies are matched
        (target_params, opt_state, env_carry, rollout), boot_aux = agent.inner_steps(
            stop(gamma), stop(lambda_), stop((params, opt_state, env_carry, rollout)), key,
            jnp.arange(K, K + L), None)
        if target is None:
            target = (rollout_outputs(agent.network.apply_rollout, target_params, matched)[0],
                      matched)
        aux = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), aux, boot_aux)
        out_params = target_params
    else:
        if target is None:
            target = _outer_target(agent, state, key, K, L, matching_states,
                                   stop((params, opt_state, env_carry, rollout)), stop(gamma),
                                   stop(lambda_), fresh_step_rollout)
            aux["bootstrap_opt_state"] = target[2]
        target = target[:2]
        matched = target[1]
        if matching_states == "target":
            logits_k = rollout_outputs(agent.network.apply_rollout, params, matched)[0]
        out_params = params
    target_logits, matched = stop(target[0]), target[1]
    loss = kl_matching(target_logits, logits_k)
    aux["outer"], aux["outer_advantages"] = outer, outer_advantages
    aux["target_logits"], aux["matched"] = target_logits, matched
    return loss, (out_params, opt_state, env_carry, rollout, aux)


def _outer_target(agent, state, key, K: int, L: int, matching_states: str, window_end, gamma,
                  lambda_, fresh_step_rollout: bool = False):
    """The ``outer`` target from (theta_K, s_K, environments, R_K), no gradient: (target logits on
    the matched states [T, B, A], matched rollout, new outer-step optimiser state). L - 1
    inner-rule updates, then theta_T = theta + opt(grad L'(theta; R)) with A' from the agent's
    outer advantages (critic or outer critic), R = R_{K+L-1}, or with ``fresh_step_rollout`` a new
    rollout of theta_{K+L-1} (``fold_in(key, K + L + 1)``). A state without an outer-step
    optimiser state (a probed a2c state) starts from a fresh one."""
    import jax
    import jax.numpy as jnp
    import optax

    from mgrl.losses import outer_pg_loss, rollout_outputs

    (params, _, env_carry, rollout), _ = agent.inner_steps(
        gamma, lambda_, window_end, key, jnp.arange(K, K + L - 1), None)
    if fresh_step_rollout:
        env_carry, rollout = agent.collect(params, env_carry, jax.random.fold_in(key, K + L + 1))
    boot_state = state.bootstrap_opt_state
    if not jax.tree.leaves(boot_state):
        boot_state = agent.inner_opt.init(state.params)
    advantages = agent.outer_advantages(params, rollout, gamma)
    grads = jax.grad(outer_pg_loss)(params, rollout, advantages, agent.network.apply)
    updates, boot_state = agent.inner_opt.update(grads, boot_state, params)
    target_params = optax.apply_updates(params, updates)
    if matching_states == "target":
        _, matched = agent.collect(target_params, env_carry, jax.random.fold_in(key, K + L))
    else:
        matched = window_end[3]
    logits = rollout_outputs(agent.network.apply_rollout, target_params, matched)[0]
    return logits, matched, boot_state
