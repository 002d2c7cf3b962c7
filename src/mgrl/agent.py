"""Meta-gradient A2C: K inner updates, a weighted mix of K outer losses, one meta-update.

One meta-step from (theta_0, inner optimiser state s_0, eta, rollout R_0 collected by theta_0)::

    for k = 0 .. K-1:                                           (a lax.scan)
        theta_{k+1}, s_{k+1} = inner_opt(grad_theta L(theta_k; R_k, gamma(eta), lambda(eta)), s_k)
        R_{k+1} = rollout collected by theta_{k+1}               (no gradient through acting)
        l_{k+1} = L'(theta_{k+1}; R_{k+1})                       (outer loss, fixed gamma', lambda')
    meta_loss(eta) = sum_k w_k l_k                               (scheme weights, w >= 0, sum 1)
    eta <- meta_opt(clip(grad_eta meta_loss))                    (only the learned meta-parameters)

The rollout that trains theta_k -> theta_{k+1} is also theta_k's validation data, and R_K is carried
into the next window as its R_0, so every environment step is used exactly once for an inner update:
a run with any K and scheme spends T*B environment steps per inner update. With ``learn = ()`` the
same code path is plain A2C (no meta-gradient is computed).

Cost: each inner update is one network pass over R_k and its backward (``jax.vjp``); that pass
also gives l_k (the policy logits and values of theta_k on R_k are all L'(theta_k; R_k) needs), so
a window costs K update passes, K acting passes and one extra pass for l_K.

gamma = sigmoid(eta_gamma) and lambda = sigmoid(eta_lambda) are stored as logits.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from mgrl.env import EnvCarry, make_env
from mgrl.config import META_PARAMETERS, AgentConfig, EnvConfig, MetaConfig
from mgrl.estimators import Estimator, estimator_of
from mgrl.estimators.outer_critic import outer_advantages as outer_critic_advantages
from mgrl.losses import (LossCoefficients, Rollout, a2c_loss_from_outputs, critic_values,
                         outer_pg_from_logits, outer_value_loss, rollout_outputs)
from mgrl.networks import ActorCritic

Eta = dict[str, chex.Array]  # {"gamma": logit, "lambda": logit}, scalars
VALIDATION_KEYS = 1 << 20  # fold_in offset of the validation rollouts' keys (meta.validation fresh)


class AgentState(NamedTuple):
    """Full training state of one seed; everything needed to resume bit-identically.

    Attributes:
      params: Haiku parameters theta.
      inner_opt_state: optax state of the inner optimiser (differentiated through).
      eta: meta-parameter logits {"gamma": [], "lambda": []}.
      meta_opt_state: optax state of the meta optimiser.
      bootstrap_opt_state: optax state of an ``outer``-target BMG agent's outer-loss step (its
        own, persistent across meta-updates); ``()`` for every other agent.
      env: :class:`~mgrl.env.EnvCarry` of B environments.
      rollout: rollout collected by the current ``params`` (R_0 of the next meta-step).
      key: PRNG key (raw uint32[2]).
      meta_updates: meta-updates done so far, int32 [].
      env_steps: environment steps taken so far (per seed), int32 [].
    """

    params: Any
    inner_opt_state: Any
    eta: Eta
    meta_opt_state: Any
    bootstrap_opt_state: Any
    env: EnvCarry
    rollout: Rollout
    key: chex.PRNGKey
    meta_updates: chex.Array
    env_steps: chex.Array


def logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def make_inner_optimizer(cfg: AgentConfig) -> optax.GradientTransformation:
    """The inner optimiser; rmsprop and adam keep the square root differentiable at zero second
    moment."""
    if cfg.optimizer == "rmsprop":
        return optax.rmsprop(cfg.learning_rate, decay=cfg.rmsprop_decay, eps=cfg.rmsprop_eps,
                             eps_in_sqrt=True)
    if cfg.optimizer == "adam":
        return optax.adam(cfg.learning_rate, eps=1e-8, eps_root=1e-12)
    if cfg.optimizer == "sgd":
        return optax.sgd(cfg.learning_rate)
    raise ValueError(f"unknown inner optimizer {cfg.optimizer!r}")  # rejected by config validation


def make_meta_optimizer(cfg: MetaConfig) -> optax.GradientTransformation:
    """Global-norm clip, then the meta-optimiser: Adam (its step ~ lr m/sqrt(v) does not scale with
    the gradient) or SGD (step = lr x clipped gradient)."""
    if cfg.optimizer == "adam":
        step = optax.adam(cfg.learning_rate, eps_root=cfg.adam_eps_root)
    elif cfg.optimizer == "sgd":
        step = optax.sgd(cfg.learning_rate)
    else:
        raise ValueError(f"unknown meta optimizer {cfg.optimizer!r}")  # rejected by config validation
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), step)


class MetaGradientAgent:
    """Pure functions of the meta-gradient A2C agent (no config reading, no state of its own)."""

    def __init__(
        self,
        env_cfg: EnvConfig,
        agent_cfg: AgentConfig,
        meta_cfg: MetaConfig,
        network: ActorCritic,
        estimator: Estimator | None = None,
    ):
        """``agent_cfg.outer_critic``: the outer advantages come from the network's outer critic
        (which it must have); a network with one trains it either way. ``estimator``: what the
        meta-loss of a window is (:func:`mgrl.estimators.estimator_of`; None: a weighting)."""
        if agent_cfg.outer_critic and not network.outer_critic:
            raise ValueError("agent.outer_critic needs a network built with outer_critic=True")
        self.uses_outer_critic = agent_cfg.outer_critic
        self.outer_value_coef = agent_cfg.outer_value_coef or 0.0
        self.estimator = estimator_of(None) if estimator is None else estimator
        self.gamma_bounds = tuple(float(b) for b in agent_cfg.gamma_bounds)
        self.exact_critic = agent_cfg.critic == "exact"
        self.env = make_env(env_cfg)
        if self.exact_critic and self.env.exact_value is None:
            raise ValueError(f"agent.critic exact needs an exact value function, which "
                             f"{env_cfg.name} lacks")  # rejected by config validation
        self.num_envs = env_cfg.num_envs
        self.rollout_length = env_cfg.rollout_length
        self.network = network
        self.agent_cfg = agent_cfg
        self.coefs = LossCoefficients(agent_cfg.pg_coef, agent_cfg.value_coef, agent_cfg.entropy_coef)
        self.inner_opt = make_inner_optimizer(agent_cfg)
        self.meta_opt = make_meta_optimizer(meta_cfg)
        self.learn_mask = {p: float(p in meta_cfg.learn) for p in META_PARAMETERS}
        self.meta_learning = len(meta_cfg.learn) > 0
        self.remat = meta_cfg.remat
        self.forward_mode = meta_cfg.gradient == "forward"
        self.meta_samples = int(meta_cfg.samples)
        self.whole_window_samples = meta_cfg.sample_window == "whole"
        self.fresh_validation = (meta_cfg.validation == "fresh" and self.meta_learning
                                 and self.estimator.is_weighting)

    # ---------------------------------------------------------------------------------- state --

    def init(self, key: chex.PRNGKey) -> AgentState:
        """Initial state: fresh network, optimisers, environments and the first rollout R_0."""
        key, net_key, env_key, rollout_key = jax.random.split(key, 4)
        env_carry = self.env.reset(env_key, self.num_envs)
        params = self.network.init(net_key, env_carry.observation[:1], env_carry.action_mask[:1])
        low, high = self.gamma_bounds
        eta = {
            "gamma": jnp.asarray(logit((self.agent_cfg.gamma_init - low) / (high - low)),
                                 _float_dtype(params)),
            "lambda": jnp.asarray(logit(self.agent_cfg.lambda_init), _float_dtype(params)),
        }
        env_carry, rollout = self.collect(params, env_carry, rollout_key)
        return AgentState(
            params=params,
            inner_opt_state=self.inner_opt.init(params),
            eta=eta,
            meta_opt_state=self.meta_opt.init(eta),
            bootstrap_opt_state=self.estimator.init_state(self, params),
            env=env_carry,
            rollout=rollout,
            key=key,
            meta_updates=jnp.zeros((), jnp.int32),
            env_steps=jnp.asarray(self.rollout_length * self.num_envs, jnp.int32),
        )

    def hyper_parameters(self, eta: Eta) -> tuple[chex.Array, chex.Array]:
        """(gamma, lambda) of the logits: gamma = low + (high - low) sigmoid(eta_gamma) with
        ``agent.gamma_bounds`` (plainly sigmoid(eta_gamma) for [0, 1]), lambda = sigmoid(eta_lambda)."""
        gamma = jax.nn.sigmoid(eta["gamma"])
        if self.gamma_bounds != (0.0, 1.0):
            low, high = self.gamma_bounds
            gamma = low + (high - low) * gamma
        return gamma, jax.nn.sigmoid(eta["lambda"])

    # ------------------------------------------------------------------------------- rollouts --

    def collect(self, params, env_carry: EnvCarry, key: chex.PRNGKey):
        """T on-policy steps of B environments; no gradient flows through acting."""
        params = jax.lax.stop_gradient(params)

        def one_step(carry, step_key):
            logits, _ = self.network.apply(params, carry.observation, carry.action_mask)
            action = jax.random.categorical(step_key, logits).astype(jnp.int32)
            return self.env.step(carry, action)

        keys = jax.random.split(key, self.rollout_length)
        env_carry, transitions = jax.lax.scan(one_step, env_carry, keys)
        return env_carry, Rollout(transitions, env_carry.observation, env_carry.action_mask)

    # -------------------------------------------------------------------------------- updates --

    def inner_update(self, params, opt_state, rollout: Rollout, gamma, lambda_,
                     outer_advantages: chex.Array | None = None):
        """theta_{k+1} = theta_k + inner_opt(grad L(theta_k; gamma, lambda)); differentiable in eta.

        One network pass over R_k (``jax.vjp``) serves the whole update: its values are both the
        critic's predictions (differentiated by the inner gradient) and the values inside the GAE
        targets (held fixed by it, but functions of theta_k for a meta-gradient taken around this
        update, so U(theta_k, eta) is differentiated exactly). The same pass also gives the outer
        loss l_k = L'(theta_k; R_k) for free: ``aux["outer"]``, with its advantages A'_k [T, B]
        (``outer_advantages`` if given, else GAE(gamma', lambda') of the pass's critic or outer
        critic values, no gradient). With an outer critic in the network its TD(lambda') term
        (weight ``agent.outer_value_coef``) joins the loss: ``aux["outer_value"]``.
        Equals ``jax.grad`` of :func:`mgrl.losses.a2c_inner_loss` (tests/test_meta_gradient.py).
        """
        (logits, values, outer_values), pullback = jax.vjp(lambda p: rollout_outputs(
            self.network.apply_rollout, p, rollout), params)
        predicted = (values, outer_values)  # the heads the critic terms train
        if self.exact_critic:  # the values inside the targets and A'
            values, outer_values = self.exact_values(rollout, logits, gamma, outer_values)

        def loss_of_outputs(logits_, values_, outer_values_=None):
            loss, aux = a2c_loss_from_outputs(logits_, values_, values, rollout, gamma, lambda_,
                                              self.coefs)
            if outer_values_ is not None:
                aux["outer_value"] = outer_value_loss(
                    outer_values_, outer_values, rollout, self.agent_cfg.outer_gamma,
                    self.agent_cfg.outer_lambda)
                loss = loss + self.outer_value_coef * aux["outer_value"]
            return loss, aux

        if outer_values is None:
            (_, aux), output_grads = jax.value_and_grad(loss_of_outputs, argnums=(0, 1),
                                                        has_aux=True)(logits, predicted[0])
            output_grads = (*output_grads, None)
        else:
            (_, aux), output_grads = jax.value_and_grad(loss_of_outputs, argnums=(0, 1, 2),
                                                        has_aux=True)(logits, *predicted)
        (grads,) = pullback(output_grads)
        if outer_advantages is None:
            outer_advantages = self._outer_gae(rollout, values, outer_values)
        aux = dict(aux, outer=outer_pg_from_logits(logits, rollout.transitions.action,
                                                   outer_advantages),
                   outer_advantages=outer_advantages)
        updates, opt_state = self.inner_opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, aux

    def _outer_gae(self, rollout: Rollout, values: chex.Array,
                   outer_values: chex.Array | None = None) -> chex.Array:
        """A' = GAE(gamma', lambda') [T, B], no gradient, from the outer critic's values if this
        agent uses it, else from the critic's."""
        return outer_critic_advantages(rollout, values, outer_values, self.uses_outer_critic,
                                       self.agent_cfg.outer_gamma, self.agent_cfg.outer_lambda)

    def exact_values(self, rollout: Rollout, logits: chex.Array, gamma, outer_values):
        """``agent.critic: exact``: (values, outer values) [T + 1, B] of the environment's exact
        value function (:attr:`mgrl.env.Environment.exact_value`) at gamma and at gamma' (the
        latter only for a network with an outer critic, else None), no gradient. A start state's
        value weighs the chains by the policy's probabilities there (``logits`` [T, B, A]; the
        bootstrap observation s_T reuses step T - 1's: a start state there follows an episode's
        end, whose ``done`` masks it)."""
        tr = rollout.transitions
        observations = jnp.concatenate([tr.observation, rollout.last_observation[None]], axis=0)
        probs = jax.nn.softmax(jax.lax.stop_gradient(logits))
        probs = jnp.concatenate([probs, probs[-1:]], axis=0)
        exact = self.env.exact_value
        values = exact(observations, probs, jax.lax.stop_gradient(gamma))
        if outer_values is not None:
            outer_values = exact(observations, probs, self.agent_cfg.outer_gamma)
        return values.astype(logits.dtype), (None if outer_values is None
                                             else outer_values.astype(logits.dtype))

    def outer_advantages(self, params, rollout: Rollout, gamma=None) -> chex.Array:
        """A' = GAE(gamma', lambda') of the validation rollout under theta_k, [T, B], no gradient
        (``gamma``: the inner discount, needed by an exact critic)."""
        if self.exact_critic:
            logits, _, outer_values = rollout_outputs(self.network.apply_rollout, params, rollout)
            return self._outer_gae(rollout, *self.exact_values(rollout, logits, gamma,
                                                                outer_values))
        if self.uses_outer_critic:
            _, values, outer_values = rollout_outputs(self.network.apply_rollout, params, rollout)
            return self._outer_gae(rollout, values, outer_values)
        return self._outer_gae(rollout, critic_values(self.network.apply, params, rollout))

    def final_outer(self, params, rollout: Rollout, advantages: chex.Array | None, gamma):
        """(l_K, A'_K, logits [T, B, 4]) at the window's end: the one outer loss no inner update
        computes, and the policy of theta_K on R_K (what BMG matches)."""
        logits, values, outer_values = rollout_outputs(self.network.apply_rollout, params, rollout)
        if self.exact_critic:
            values, outer_values = self.exact_values(rollout, logits, gamma, outer_values)
        if advantages is None:
            advantages = self._outer_gae(rollout, values, outer_values)
        return (outer_pg_from_logits(logits, rollout.transitions.action, advantages), advantages,
                logits)

    def inner_steps(self, gamma, lambda_, carry, key: chex.PRNGKey, steps: chex.Array,
                     scan_advantages: chex.Array | None, fresh: bool = False):
        """Inner updates k in ``steps`` [n] (a ``lax.scan``): update theta_k on R_k, then collect
        R_{k+1} with ``fold_in(key, k)``. With ``fresh``, theta_{k+1} first collects a validation
        rollout V_{k+1} (``fold_in(key, VALIDATION_KEYS + k)``) and the step's outer loss is
        l_{k+1} = L'(theta_{k+1}; V_{k+1}) (advantages: ``scan_advantages[k]`` if given).
        carry = (params, inner opt state, env carry, rollout); returns (carry, per-step aux [n])."""

        def inner_step(carry, inputs):
            k, advantages_k = inputs
            params, opt_state, env_carry, rollout = carry
            params, opt_state, aux = self.inner_update(params, opt_state, rollout, gamma, lambda_,
                                                       None if fresh else advantages_k)
            collected = []
            if fresh:
                env_carry, validation = self.collect(
                    params, env_carry, jax.random.fold_in(key, VALIDATION_KEYS + k))
                aux["outer"], aux["outer_advantages"], _ = self.final_outer(
                    params, validation, advantages_k, gamma)
                collected.append(validation.transitions)
            env_carry, rollout = self.collect(params, env_carry, jax.random.fold_in(key, k))
            collected.append(rollout.transitions)
            tr = collected[0] if len(collected) == 1 else jax.tree.map(
                lambda *x: jnp.concatenate(x), *collected)  # [T or 2T, B]
            aux["episodes"] = jnp.sum(tr.done)
            aux["return_sum"] = jnp.sum(tr.completed_return)
            aux["length_sum"] = jnp.sum(tr.completed_length).astype(jnp.float32)
            aux["reward_mean"] = jnp.mean(tr.reward)
            return (params, opt_state, env_carry, rollout), aux

        if self.remat:
            inner_step = jax.checkpoint(inner_step)
        return jax.lax.scan(inner_step, carry, (steps, scan_advantages))

    def meta_loss(
        self,
        eta: Eta,
        state: AgentState,
        key: chex.PRNGKey,
        weights: chex.Array,
        outer_advantages: chex.Array | None = None,
        final_outer: bool = True,
        target: tuple[chex.Array, Rollout] | None = None,
    ):
        """The estimator's meta-loss of the window of K = len(weights) inner updates from ``state``
        (:class:`mgrl.estimators.Estimator`; a weighting: sum_k w_k l_k,
        :func:`mgrl.estimators.weighting.meta_loss`). ``target``: bmg only, a fixed (target logits
        [T, B, A], matched rollout). Returns (meta_loss, (final params, inner opt state, env carry,
        last rollout, per-step aux)), as :meth:`window`."""
        return self.estimator.meta_loss(self, eta, state, key, weights, outer_advantages,
                                        final_outer, target)

    def window(
        self,
        eta: Eta,
        state: AgentState,
        key: chex.PRNGKey,
        horizon: int,
        outer_advantages: chex.Array | None = None,
        final_outer: bool = True,
    ):
        """K = ``horizon`` inner updates from ``state`` and the outer losses l_1..l_K along them.

        Inner step k (a ``lax.scan``) updates theta_k on R_k, and its network pass also yields
        l_k = L'(theta_k; R_k); then theta_{k+1} collects R_{k+1}. So l_1..l_{K-1} come from steps
        1..K-1 at no extra cost, and only l_K needs one more pass, after the scan.

        Args:
          eta: meta-parameter logits (the argument differentiated).
          state: the window's start (theta_0, s_0, R_0, environments).
          key: randomness of the window; inner step k collects with ``fold_in(key, k)``, so the
            first k steps of a K-window equal a k-window with the same key.
          horizon: K.
          outer_advantages: optional [K, T, B] coefficients A'_1..A'_K of the outer losses. By
            default they are computed at theta_k and carry no gradient; passing the values returned
            in ``aux`` freezes them, which turns the meta-loss into the scalar surrogate whose exact
            gradient is the meta-gradient (used by the finite-difference checks). With
            ``final_outer`` False they are A'_0..A'_{K-1}.
          final_outer: False when nothing is differentiated (plain A2C): skip the extra pass for
            l_K and use l_0..l_{K-1} instead, i.e. the same outer losses one update later
            (theta_0 and R_0 of this window are theta_K and R_K of the previous one).

        Returns:
          (final params, inner opt state, env carry, last rollout, per-step aux [K]);
          ``aux["outer"]`` and ``aux["outer_advantages"]`` are l_1..l_K and A'_1..A'_K
          (l_0..l_{K-1} and A'_0..A'_{K-1} when ``final_outer`` is False).
        """
        gamma, lambda_ = self.hyper_parameters(eta)
        K = horizon
        init = (state.params, state.inner_opt_state, state.env, state.rollout)
        if self.fresh_validation and final_outer:  # step k computes l_{k+1} on V_{k+1}
            (params, opt_state, env_carry, rollout), aux = self.inner_steps(
                gamma, lambda_, init, key, jnp.arange(K), outer_advantages, fresh=True)
            return params, opt_state, env_carry, rollout, aux
        # Step k computes l_k: it gets A'_k, i.e. the given A'_1..A'_K shifted by one (l_0 is
        # never part of a differentiated meta-loss, so its coefficients are unused zeros).
        scan_advantages = None
        if outer_advantages is not None and final_outer:
            scan_advantages = jnp.concatenate(
                [jnp.zeros_like(outer_advantages[:1]), outer_advantages[:-1]], axis=0)
        elif outer_advantages is not None:
            scan_advantages = outer_advantages
        (params, opt_state, env_carry, rollout), aux = self.inner_steps(
            gamma, lambda_, init, key, jnp.arange(K), scan_advantages)
        if final_outer:
            last_outer, last_advantages, _ = self.final_outer(
                params, rollout, None if outer_advantages is None else outer_advantages[-1], gamma)
            aux["outer"] = jnp.concatenate([aux["outer"][1:], last_outer[None]])
            aux["outer_advantages"] = jnp.concatenate(
                [aux["outer_advantages"][1:], last_advantages[None]])
        return params, opt_state, env_carry, rollout, aux

    def lookahead_env_steps(self) -> int:
        """Environment steps per window (per meta-gradient sample) that feed only the
        meta-gradient: the estimator's look-ahead rollouts (an ``outer`` BMG target's)."""
        return self.estimator.lookahead_rollouts * self.rollout_length * self.num_envs

    def rollouts_per_update(self) -> int:
        """Rollouts of real interaction per inner update: R_k, and V_{k+1} with fresh validation."""
        return 1 + int(self.fresh_validation)

    def extra_env_steps(self, meta_updates: int, horizon: int) -> int:
        """Environment steps of ``meta_updates`` meta-updates at K = ``horizon`` that feed only the
        meta-gradient: every sample's look-ahead rollouts, and the M - 1 extra samples' windows
        (their inner updates' rollouts, and their own R_0 with ``meta.sample_window: whole``)."""
        if not self.meta_learning:
            return 0
        rollouts = (self.updates_per_window(horizon) * self.rollouts_per_update()
                    + int(self.whole_window_samples))
        return meta_updates * (self.meta_samples * self.lookahead_env_steps()
                               + (self.meta_samples - 1) * rollouts * self.rollout_length
                               * self.num_envs)

    def updates_per_window(self, horizon: int) -> int:
        """Inner updates of one meta-step the agent keeps: K, plus the estimator's kept updates
        (an ``inner``-target BMG agent's L)."""
        return int(horizon) + self.estimator.kept_updates

    def meta_gradient(self, state: AgentState, key: chex.PRNGKey, weights: chex.Array):
        """grad_eta of the meta-loss from ``state`` with ``key``; returns (grad, (loss, outputs)).

        ``meta.gradient: reverse`` backpropagates through the K inner updates (memory grows with
        K); ``forward`` pushes D = 2 tangents (one per meta-parameter) through them with
        ``jax.jacfwd`` (memory independent of K). Acting and the outer advantages carry no tangent,
        as they carry no cotangent in reverse mode (both ``stop_gradient``), so the two agree.
        """
        if self.forward_mode:
            def loss_twice(eta):
                loss, outputs = self.meta_loss(eta, state, key, weights)
                return loss, (loss, outputs)

            grad, (loss, outputs) = jax.jacfwd(loss_twice, has_aux=True)(state.eta)
            return grad, (loss, outputs)
        (loss, outputs), grad = jax.value_and_grad(self.meta_loss, has_aux=True)(
            state.eta, state, key, weights
        )
        return grad, (loss, outputs)

    def outer_loss_jacobian(self, state: AgentState, key: chex.PRNGKey, horizon: int):
        """J [K, D]: row k-1 is d l_k / d eta (columns :data:`META_PARAMETERS`), k = 1..K, for the
        outer losses l_k = L'(theta_k; R_k) of one K-window, in forward mode (one pass, D tangents).

        The first k steps of a K-window with ``key`` are the k-window with ``key`` (inner step k
        collects with ``fold_in(key, k)``), so ``w @ J[:k]`` is the meta-gradient of any weighting
        scheme w at any horizon k <= K from this one pass. Weighting schemes only (not bmg).
        Returns (J, outputs of the K-window).
        """
        if not self.estimator.is_weighting:
            raise ValueError(f"outer_loss_jacobian serves weighting schemes; a "
                             f"{self.estimator.kind} agent's meta-loss is not a weighting of the "
                             f"outer losses")

        def outer_losses(eta):
            outputs = self.window(eta, state, key, horizon)
            return outputs[4]["outer"], outputs

        jacobian, outputs = jax.jacfwd(outer_losses, has_aux=True)(state.eta)
        return jnp.stack([jacobian[p] for p in META_PARAMETERS], axis=-1), outputs

    def meta_sample_keys(self, window_key: chex.PRNGKey) -> chex.PRNGKey:
        """Keys of the M = ``meta.samples`` windows of one meta-update, [M, 2]: key 0 is the
        window's own (the training trajectory), keys 1..M-1 come from ``fold_in(window_key, 1)``."""
        if self.meta_samples == 1:
            return window_key[None]
        extra = jax.random.split(jax.random.fold_in(window_key, 1), self.meta_samples - 1)
        return jnp.concatenate([window_key[None], extra])

    def fresh_start(self, state: AgentState, key: chex.PRNGKey) -> AgentState:
        """``state`` with a new R_0: a rollout of theta_0 from the current environments with
        ``key`` (the environments move on by it). A window from the result is a draw of the whole
        window, R_0 included; training's windows are such draws, as each R_0 was collected afresh
        by the window before."""
        env_carry, rollout = self.collect(state.params, state.env, key)
        return state._replace(env=env_carry, rollout=rollout)

    def sample_meta_gradient(self, state: AgentState, sample_key: chex.PRNGKey,
                             weights: chex.Array):
        """One extra meta-gradient sample of the window from ``state`` (``meta.sample_window``):
        ``whole`` splits ``sample_key`` into the keys of its own R_0 (:meth:`fresh_start`) and of
        its window; ``shared_r0`` runs the window with ``sample_key`` on the stored R_0."""
        if self.whole_window_samples:
            start_key, sample_key = jax.random.split(sample_key)
            state = self.fresh_start(state, start_key)
        return self.meta_gradient(state, sample_key, weights)[0]

    def averaged_meta_gradient(self, state: AgentState, window_key: chex.PRNGKey,
                               weights: chex.Array):
        """(1/M) sum_m g_m, g_0 the meta-gradient of the training window (``window_key``) and
        g_1..g_{M-1} :meth:`sample_meta_gradient` with keys 1..M-1 of :meth:`meta_sample_keys`:
        the expectation of one sample's meta-gradient with 1/M of its variance (independent
        windows from the same state). Returns (mean grad, (loss, outputs)) with sample 0's loss
        and outputs: its inner updates are the training trajectory, so the data and the number
        of meta-updates do not depend on M. The other M - 1 samples run sequentially
        (``lax.map``)."""
        grad, (loss, outputs) = self.meta_gradient(state, window_key, weights)
        if self.meta_samples == 1:
            return grad, (loss, outputs)
        keys = self.meta_sample_keys(window_key)[1:]
        extra = jax.lax.map(lambda k: self.sample_meta_gradient(state, k, weights), keys)
        mean = {p: (grad[p] + jnp.sum(extra[p], axis=0)) / self.meta_samples for p in grad}
        return mean, (loss, outputs)

    def meta_step(self, state: AgentState, weights: chex.Array) -> tuple[AgentState, dict]:
        """One window: K inner updates (K + L for BMG) and (if any meta-parameter is learned) one
        meta-update with the mean of ``meta.samples`` meta-gradient samples of the window."""
        key, window_key = jax.random.split(state.key)
        if self.meta_learning:
            grad, (loss, outputs) = self.averaged_meta_gradient(state, window_key, weights)
            masked = {p: g * self.learn_mask[p] for p, g in grad.items()}
            updates, meta_opt_state = self.meta_opt.update(masked, state.meta_opt_state, state.eta)
            eta = optax.apply_updates(state.eta, updates)
            grad_norm = optax.tree.norm(masked)
            step_gamma = jnp.abs(updates["gamma"])
        else:
            loss, outputs = self.meta_loss(state.eta, state, window_key, weights, final_outer=False)
            grad = {p: jnp.full((), jnp.nan, loss.dtype) for p in META_PARAMETERS}
            eta, meta_opt_state, grad_norm = state.eta, state.meta_opt_state, jnp.nan
            step_gamma = jnp.full((), jnp.nan, loss.dtype)
        params, opt_state, env_carry, rollout, aux = outputs
        updates_per_window = self.updates_per_window(weights.shape[0])
        new_state = AgentState(
            params=params,
            inner_opt_state=opt_state,
            eta=eta,
            meta_opt_state=meta_opt_state,
            bootstrap_opt_state=aux.get("bootstrap_opt_state", state.bootstrap_opt_state),
            env=env_carry,
            rollout=rollout,
            key=key,
            meta_updates=state.meta_updates + 1,
            env_steps=state.env_steps + updates_per_window * self.rollouts_per_update()
            * self.rollout_length * self.num_envs,
        )
        metrics = {
            "meta/grad_gamma": grad["gamma"],
            "meta/grad_lambda": grad["lambda"],
            "meta/grad_norm": jnp.asarray(grad_norm, loss.dtype),
            "meta/step_gamma": jnp.asarray(step_gamma, loss.dtype),
            "loss/meta": loss,
            "loss/outer_last": aux["outer"][-1],
            "meta/outer_advantage_mean": jnp.mean(aux["outer_advantages"]),
            "loss/inner": jnp.mean(aux["pg"] * self.coefs.pg + aux["value"] * self.coefs.value
                                   - aux["entropy"] * self.coefs.entropy),
            "loss/inner_pg": jnp.mean(aux["pg"]),
            "loss/inner_value": jnp.mean(aux["value"]),
            "policy/entropy": jnp.mean(aux["entropy"]),
            "episodes": jnp.sum(aux["episodes"]),
            "return_sum": jnp.sum(aux["return_sum"]),
            "length_sum": jnp.sum(aux["length_sum"]),
            "train/reward_per_step": jnp.mean(aux["reward_mean"]),
            "loss/outer_value": (jnp.mean(aux["outer_value"]) if "outer_value" in aux
                                 else jnp.full((), jnp.nan, loss.dtype)),
        }
        return new_state, metrics


def _float_dtype(params) -> jnp.dtype:
    return jax.tree.leaves(params)[0].dtype
