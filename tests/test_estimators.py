"""Bootstrapped (BMG) meta-gradients and the outer critic, in float64 on a tiny board.

* BMG: the gradient of the KL matching loss, with the bootstrapped target frozen (it carries no
  gradient), matches central finite differences, for the outer target (the published one) at
  K in {1, 2} and L in {1, 2} and for the inner target at K = L = 2; the KL and its gradient vanish
  when the target is theta_K's own policy; both targets are recomputed here by plain loops of
  textbook updates (inner: L inner updates; outer: L - 1 inner updates, one outer-loss step with
  its own optimiser state, matched on a fresh rollout of the target).
* Outer critic: the meta-gradient with A' from the outer critic (frozen) matches finite
  differences. Its training (float32 runs: the Monte Carlo regression and the bit-identical
  actor-critic trajectory) is in tests/test_outer_critic_training.py, so that pytest-xdist runs it
  beside this file's float64 programs.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import tiny_config
from mgrl.config import ConfigError, SchemeConfig
from mgrl.losses import kl_matching, outer_pg_loss, rollout_outputs
from mgrl.train import make_agent
from mgrl.runs import extra_estimators, scheme_aliases
from test_meta_gradient import ETA_KEYS, as_vector, two_pass_inner_update

OUTER = {"outer_critic": True, "outer_value_coef": 0.5}


def perturbed_etas(eta, eps):
    """[4] stacked etas: +eps, -eps on gamma, then on lambda (one vmapped call evaluates all)."""
    rows = []
    for name in ETA_KEYS:
        for sign in (1.0, -1.0):
            rows.append(dict(eta, **{name: eta[name] + sign * eps}))
    return jax.tree.map(lambda *x: jnp.stack(x), *rows)


def central_differences(values, eps):
    values = np.asarray(values)
    return np.array([(values[0] - values[1]) / (2 * eps), (values[2] - values[3]) / (2 * eps)])


@pytest.fixture(scope="module")
def setup64():
    """Float64 agents sharing one network with an outer critic, and a state one meta-step past
    initialisation (the outer critic already trained once)."""
    with jax.enable_x64(True):
        cfg = tiny_config(agent={"learning_rate": 1e-2, **OUTER}, train={"dtype": "float64"})
        outer_agent = make_agent(cfg)  # A' from the outer critic
        plain = dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, outer_critic=False))
        critic_agent = make_agent(plain, outer_critic_network=True)  # same network, A' from the critic
        bmg = {(target, L): make_agent(plain, SchemeConfig("bmg", bootstrap_steps=L,
                                                           bootstrap_target=target),
                                       outer_critic_network=True)
               for target in ("outer", "inner") for L in (1, 2)}
        bmg["outer-fresh", 1] = make_agent(plain, SchemeConfig(
            "bmg", bootstrap_steps=1, bootstrap_target="outer", bootstrap_rollout="fresh"),
            outer_critic_network=True)  # [2022]'s: the outer step on a fresh rollout of theta_K
        state = jax.jit(outer_agent.init)(jax.random.PRNGKey(3))
        state, _ = jax.jit(outer_agent.meta_step)(state, jnp.ones((1,)))
        yield cfg, outer_agent, critic_agent, bmg, state


EPS = 1e-5


@functools.partial(jax.jit, static_argnums=(0, 3))
def bmg_check(agent, state, key, K):
    """One program per (agent, K): the BMG meta-gradient, its outputs (bootstrapped target logits
    [T, B, 4] and matched rollout in aux), the loss, and the losses at eta +- EPS per component [4]
    with that target frozen (it carries no gradient, so the frozen loss's exact gradient is the
    meta-gradient)."""
    weights = jnp.ones((K,)) / K
    grad, (loss, outputs) = agent.meta_gradient(state, key, weights)
    target = outputs[4]["target_logits"], outputs[4]["matched"]
    losses = jax.vmap(lambda eta: agent.meta_loss(eta, state, key, weights, target=target)[0])(
        perturbed_etas(state.eta, EPS))
    return grad, outputs, loss, losses


@pytest.mark.parametrize("target,K,L", [("outer", 1, 1), ("outer", 1, 2), ("outer", 2, 2),
                                        ("inner", 2, 2), ("outer-fresh", 1, 1)])
def test_bmg_meta_gradient_matches_finite_differences(setup64, target, K, L):
    """K and L each take 1 and 2 on the outer target, K != L once (1, 2), so a K and L swapped in
    the code cannot pass; (2, 2) and the fresh-rollout target share their programs with the
    by-hand target checks below."""
    _, _, _, bmg, state = setup64
    with jax.enable_x64(True):
        grad, _, loss, losses = bmg_check(bmg[target, L], state, jax.random.PRNGKey(5), K)
        numeric = central_differences(losses, EPS)
    analytic = as_vector(grad)
    assert float(loss) > 0 and np.all(np.abs(analytic) > 0), (loss, analytic)
    rel = np.abs(analytic - numeric) / np.abs(numeric)
    assert np.all(rel < 1e-4), f"K={K} L={L}: analytic {analytic} vs numeric {numeric}"


def test_bmg_target_is_L_more_inner_updates_and_kl_vanishes_at_theta_K(setup64):
    """The target is pi after L = 2 undifferentiated inner updates from theta_K on R_K, R_{K+1}
    (recomputed with textbook two-pass updates), so it differs from pi_theta_K and the KL is > 0;
    with pi_theta_K itself as the target the KL and its gradient are zero."""
    _, _, critic_agent, bmg, state = setup64
    K, L, agent = 2, 2, bmg["inner", 2]
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(5)
        grad, outputs, loss, _ = bmg_check(agent, state, key, K)  # the (K, L) = (2, 2) program
        target = outputs[4]["target_logits"]

        @jax.jit
        def by_hand():
            # theta_K, R_K from the K-step window of the same key (its first K steps are BMG's).
            _, (params, opt_state, env_carry, rollout, _) = critic_agent.meta_loss(
                state.eta, state, key, jnp.ones((K,)) / K)
            matched = rollout
            gamma = jax.nn.sigmoid(state.eta["gamma"])
            lambda_ = jax.nn.sigmoid(state.eta["lambda"])
            theta_k_logits = rollout_outputs(agent.network.apply_rollout, params, matched)[0]
            for j in range(K, K + L):
                params, opt_state = two_pass_inner_update(agent, params, opt_state, rollout,
                                                          gamma, lambda_)
                env_carry, rollout = agent.collect(params, env_carry, jax.random.fold_in(key, j))
            return theta_k_logits, rollout_outputs(agent.network.apply_rollout, params, matched)[0]

        theta_k_logits, target_by_hand = by_hand()
        zero_loss, zero_grad = jax.jit(jax.value_and_grad(
            lambda eta: agent.meta_loss(eta, state, key, jnp.ones((K,)) / K,
                                        target=(theta_k_logits, outputs[4]["matched"]))[0]))(
            state.eta)
        expected_kl = kl_matching(target_by_hand, theta_k_logits)
    legal = np.asarray(theta_k_logits) > -1e8
    np.testing.assert_allclose(np.asarray(target)[legal], np.asarray(target_by_hand)[legal],
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(loss), float(expected_kl), rtol=1e-9)
    # The bootstrap moved the policy: skipping it would make the target theta_K's own policy.
    assert np.max(np.abs(np.asarray(target)[legal] - np.asarray(theta_k_logits)[legal])) > 1e-4
    assert float(loss) > 1e-10 and np.max(np.abs(as_vector(grad))) > 1e-8
    assert abs(float(zero_loss)) < 1e-15
    assert np.max(np.abs(as_vector(zero_grad))) < 1e-12 * max(1.0, np.max(np.abs(as_vector(grad))))


def test_outer_bmg_target_is_a_look_ahead_with_its_own_outer_step(setup64):
    """The published target (L = 2): one inner-rule update from theta_K on R_K, then one step on the
    outer loss (A' of the critic at gamma' = lambda' = 1, policy gradient only) with a fresh
    optimiser state of its own, then a fresh rollout of the target whose states are matched; all
    recomputed by hand. The agent goes on from theta_K (the look-ahead is not kept), and the new
    bootstrap optimiser state is the one the outer step produced."""
    _, _, critic_agent, bmg, state = setup64
    K, L, agent = 2, 2, bmg["outer", 2]
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(5)
        grad, outputs, loss, _ = bmg_check(agent, state, key, K)

        @jax.jit
        def by_hand():
            _, (theta_k, opt_state, env_carry, rollout, _) = critic_agent.meta_loss(
                state.eta, state, key, jnp.ones((K,)) / K)
            gamma, lambda_ = critic_agent.hyper_parameters(state.eta)
            params, _ = two_pass_inner_update(agent, theta_k, opt_state, rollout, gamma, lambda_)
            env_carry, rollout = agent.collect(params, env_carry, jax.random.fold_in(key, K))
            return (theta_k, *outer_step_by_hand(agent, critic_agent, params, theta_k, rollout,
                                                 env_carry, jax.random.fold_in(key, K + L)))

        theta_k, boot_state, target_by_hand, theta_k_logits = by_hand()
    params, aux = outputs[0], outputs[4]
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(theta_k)):
        np.testing.assert_array_equal(a, b)  # the agent keeps theta_K
    for a, b in zip(jax.tree.leaves(aux["bootstrap_opt_state"]), jax.tree.leaves(boot_state)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-15)
    assert max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(boot_state)) > 0
    assert_target_and_kl(aux["target_logits"], loss, target_by_hand, theta_k_logits)
    assert float(loss) > 1e-10 and np.max(np.abs(as_vector(grad))) > 1e-8


def outer_step_by_hand(agent, critic_agent, params, theta_k, rollout, env_carry, matched_key):
    """The outer target's tail by hand: one step on the outer loss (A' of the critic at gamma' =
    lambda' = 1, policy gradient only) from ``params`` on ``rollout``, with a fresh optimiser
    state; the target's matched rollout from ``env_carry``. Returns the step's optimiser state and
    the target's and theta_K's logits on the matched rollout."""
    advantages = critic_agent.outer_advantages(params, rollout)
    grads = jax.grad(lambda p: outer_pg_loss(p, rollout, advantages, agent.network.apply))(params)
    updates, opt_state = agent.inner_opt.update(grads, agent.inner_opt.init(theta_k), params)
    target_params = optax.apply_updates(params, updates)
    _, matched = agent.collect(target_params, env_carry, matched_key)
    logits = lambda p: rollout_outputs(agent.network.apply_rollout, p, matched)[0]
    return opt_state, logits(target_params), logits(theta_k)


def assert_target_and_kl(target_logits, loss, target_by_hand, theta_k_logits):
    """The agent's target logits (legal moves) and KL meta-loss equal the by-hand ones."""
    legal = np.asarray(theta_k_logits) > -1e8
    np.testing.assert_allclose(np.asarray(target_logits)[legal], target_by_hand[legal],
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(loss), float(kl_matching(target_by_hand, theta_k_logits)),
                               rtol=1e-9)


def test_outer_critic_meta_gradient_matches_finite_differences(setup64):
    """K = 2, uniform weights, A' from the outer critic frozen at eta (policy-gradient coefficients);
    they are not the critic's A', so the outer critic is what the meta-gradient uses."""
    _, outer_agent, critic_agent, _, state = setup64
    eps, K = 1e-5, 2
    weights = jnp.ones((K,)) / K
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(11)

        @jax.jit
        def check(state):
            grad, (_, outputs) = outer_agent.meta_gradient(state, key, weights)
            adv = outputs[4]["outer_advantages"]  # A'_1..A'_K, frozen below
            critic_adv = critic_agent.meta_loss(state.eta, state, key, weights)[1][4][
                "outer_advantages"]
            losses = jax.vmap(lambda eta: outer_agent.meta_loss(eta, state, key, weights, adv)[0])(
                perturbed_etas(state.eta, eps))
            return grad, adv, critic_adv, losses

        grad, adv, critic_adv, losses = check(state)
        numeric = central_differences(losses, eps)
    analytic = as_vector(grad)
    assert np.all(np.abs(analytic) > 0)
    rel = np.abs(analytic - numeric) / np.abs(numeric)
    assert np.all(rel < 1e-4), f"analytic {analytic} vs numeric {numeric}"
    assert not np.allclose(np.asarray(adv), np.asarray(critic_adv), rtol=1e-3)


def test_bmg_and_outer_critic_schemes_are_distinct_estimators_at_every_K():
    """Aliasing (one training run per estimator) keeps bmg and outer-critic schemes apart from
    last even at K = 1, where all weighting schemes coincide."""
    cfg = tiny_config(horizons=[1, 2], agent={"outer_value_coef": 0.5}, schemes={
        "last": {"kind": "last"}, "uniform": {"kind": "uniform"},
        "bmg": {"kind": "bmg", "bootstrap_steps": 2},
        "bmg_copy": {"kind": "bmg", "bootstrap_steps": 2, "bootstrap_target": "outer"},
        "last_oc": {"kind": "last", "outer_critic": True}})
    aliases = scheme_aliases(cfg)
    assert aliases == {(1, "uniform"): "last", (1, "lambda_0.5"): "last",  # tiny's lambda_0.5
                       (2, "lambda_0.5"): "uniform", (1, "bmg_copy"): "bmg", (2, "bmg_copy"): "bmg"}


def test_bmg_windows_count_their_updates_and_programs_are_keyed_by_estimator():
    """An inner-target bmg window is K + L real updates, an outer-target one K (its look-ahead's
    rollouts are extra environment steps): meta-updates and environment steps per interval follow;
    every distinct estimator gets its own program (nothing is compiled here: jit is lazy)."""
    from mgrl.train import make_train

    cfg = tiny_config(horizons=[2], agent={"outer_value_coef": 0.5},
                      train={"inner_updates_per_interval": 8}, schemes={
                          "last": {"kind": "last"},
                          "b1": {"kind": "bmg", "bootstrap_steps": 1, "bootstrap_target": "inner"},
                          "b2": {"kind": "bmg", "bootstrap_steps": 2, "bootstrap_target": "inner"},
                          "oc": {"kind": "last", "outer_critic": True},
                          "o2": {"kind": "bmg", "bootstrap_steps": 2},
                          "o2w": {"kind": "bmg", "bootstrap_steps": 2, "matching_states": "window"}})
    step = cfg.env.num_envs * cfg.env.rollout_length
    last, b1, b2, oc, o2, o2w = (make_train(cfg, 2, s) for s in ("last", "b1", "b2", "oc", "o2",
                                                                 "o2w"))
    assert o2.program.meta_updates_per_interval == 4 and o2.program.env_steps_per_interval == 8 * step
    assert (o2.program.agent.lookahead_env_steps(), o2w.program.agent.lookahead_env_steps(),
            b2.program.agent.lookahead_env_steps()) == (2 * step, step, 0)
    assert (last.program.meta_updates_per_interval, b1.program.meta_updates_per_interval,
            b2.program.meta_updates_per_interval) == (4, 3, 2)  # ceil(8 / 2), ceil(8 / 3), 8 / 4
    assert b1.program.env_steps_per_interval == 3 * 3 * step
    assert b2.program.env_steps_per_interval == 2 * 4 * step
    programs = {id(t.program) for t in (last, b1, b2, oc, o2, o2w)}
    assert len(programs) == 6
    assert oc.program.agent.uses_outer_critic and not last.program.agent.uses_outer_critic
    assert b2.program.agent.estimator.kept_updates == 2 and b1.program.agent.estimator.kept_updates == 1
    assert last.program.agent.estimator.is_weighting and not o2.program.agent.estimator.is_weighting
    assert extra_estimators(cfg) == ["b1", "b2", "oc", "o2", "o2w"]
    everyone = tiny_config(agent={"outer_critic": True, "outer_value_coef": 0.5},
                           schemes={"last": {"kind": "last"},
                                    "plain": {"kind": "last", "outer_critic": False}})
    assert extra_estimators(everyone) == ["plain"]  # its A' comes from the other critic


@pytest.mark.parametrize("overrides, key", [
    ({"schemes": {"b": {"kind": "bmg", "bootstrap_steps": 0}}}, "schemes.b.bootstrap_steps"),
    ({"schemes": {"b": {"kind": "bmg"}}}, "schemes.b.bootstrap_steps"),
    ({"schemes": {"b": {"kind": "bmg", "bootstrap_steps": 1, "matching": "l2"}}}, "schemes.b.matching"),
    ({"schemes": {"b": {"kind": "last", "bootstrap_steps": 1}}}, "schemes.b.bootstrap_steps"),
    ({"schemes": {"b": {"kind": "bmg", "bootstrap_steps": "two"}}}, "schemes.b.bootstrap_steps"),
    ({"schemes": {"b": {"kind": "bmg", "bootstrap_steps": 1, "bootstrap_target": "both"}}},
     "schemes.b.bootstrap_target"),
    ({"schemes": {"b": {"kind": "last", "bootstrap_target": "outer"}}}, "schemes.b.bootstrap_target"),
    ({"schemes": {"b": {"kind": "bmg", "bootstrap_steps": 1, "bootstrap_target": "inner",
                        "matching_states": "target"}}}, "schemes.b.matching_states"),
    ({"schemes": {"b": {"kind": "bmg", "bootstrap_steps": 1, "matching_states": "all"}}},
     "schemes.b.matching_states"),
    ({"schemes": {"b": {"kind": "bmg", "bootstrap_steps": 1, "bootstrap_target": "inner",
                        "bootstrap_rollout": "fresh"}}}, "schemes.b.bootstrap_rollout"),
    ({"schemes": {"b": {"kind": "bmg", "bootstrap_steps": 1, "bootstrap_rollout": "new"}}},
     "schemes.b.bootstrap_rollout"),
    ({"network": {"conv_strides": [2, 1]}}, "network.conv_strides"),  # one convolution
    ({"network": {"conv_padding": "FULL"}}, "network.conv_padding"),
    ({"network": {"mask_illegal": 0}}, "network.mask_illegal"),
    ({"agent": {"rmsprop_decay": 1.0}}, "agent.rmsprop_decay"),
    ({"agent": {"rmsprop_eps": 0.0}}, "agent.rmsprop_eps"),
    ({"meta": {"adam_eps_root": -1.0}}, "meta.adam_eps_root"),
    ({"meta": {"validation": "holdout"}}, "meta.validation"),
    ({"train": {"eval_episodes": -1}}, "train.eval_episodes"),
    ({"env": {"name": "cartpole"}}, "env.name"),
    ({"env": {"name": "discounting_chain"}}, "network.conv_channels"),
    ({"env": {"name": "discounting_chain", "mapping_seed": 5}, "network": {"conv_channels": []}},
     "env.mapping_seed"),
    ({"agent": {"critic": "exact"}}, "agent.critic"),
    ({"agent": {"critic": "oracle"}}, "agent.critic"),
    ({"network": {"bias": "no"}}, "network.bias"),
    ({"agent": {"optimizer": "lbfgs"}}, "agent.optimizer"),
    ({"agent": {"gamma_bounds": [0.9]}}, "agent.gamma_bounds"),
    ({"agent": {"gamma_bounds": [0.9, 0.5], "gamma_init": 0.7}}, "agent.gamma_bounds"),
    ({"agent": {"gamma_bounds": [0.9, 1.0], "gamma_init": 0.8}}, "agent.gamma_init"),
    ({"agent": {"gamma_bounds": [0.9, 1.0], "gamma_init": 0.95},
      "sensitivity": {"gammas": [0.5, 0.99]}}, "sensitivity.gammas"),
    ({"agent": {"outer_critic": True}}, "agent.outer_value_coef"),
    ({"schemes": {"oc": {"kind": "last", "outer_critic": True}}}, "agent.outer_value_coef"),
    ({"agent": {"outer_critic": True, "outer_value_coef": 0.0}}, "agent.outer_value_coef"),
    ({"agent": {"outer_critic": "yes", "outer_value_coef": 0.5}}, "agent.outer_critic"),
])
def test_new_settings_have_errors_naming_their_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        tiny_config(**overrides)
    assert err.value.key == key


def test_the_authors_bmg_target_steps_on_a_fresh_rollout_of_theta_k(setup64):
    """bootstrap_rollout fresh, L = 1 ([2022]): theta_K collects a new rollout, one outer-loss step
    on it (its own optimiser state) makes the target, which collects the matched rollout next; all
    recomputed by hand. The look-ahead counts one more rollout than with the window's."""
    _, _, critic_agent, bmg, state = setup64
    K, agent = 1, bmg["outer-fresh", 1]
    assert agent.estimator.lookahead_rollouts == bmg["outer", 1].estimator.lookahead_rollouts + 1
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(5)
        _, outputs, loss, _ = bmg_check(agent, state, key, K)

        @jax.jit
        def by_hand():
            _, (theta_k, _, env_carry, _, _) = critic_agent.meta_loss(
                state.eta, state, key, jnp.ones((K,)) / K)
            env_carry, fresh = agent.collect(theta_k, env_carry, jax.random.fold_in(key, K + 2))
            return outer_step_by_hand(agent, critic_agent, theta_k, theta_k, fresh, env_carry,
                                      jax.random.fold_in(key, K + 1))[1:]

        target_by_hand, theta_k_logits = by_hand()
    assert_target_and_kl(outputs[4]["target_logits"], loss, target_by_hand, theta_k_logits)
