"""Meta-gradients in float64 on a tiny board: finite differences, k-step identities, mixing.

Every check uses fixed keys, so the rollouts are the same in every evaluation (actions are sampled
by Gumbel-argmax, which does not flip under a 1e-5 perturbation). With the outer advantages frozen
(they are policy-gradient coefficients, held fixed by the estimator) the meta-loss is a smooth
scalar function of eta through all K inner updates, inner optimiser states and TD targets, and its
gradient must match central finite differences.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optax

from conftest import tiny_config

from mgrl.losses import a2c_inner_loss, critic_values, outer_pg_loss
from mgrl.train import make_agent
from mgrl.estimators import scheme_weights
from mgrl.runs import scheme_of

SCHEMES = ("last", "uniform", "lambda_0.5")
ETA_KEYS = ("gamma", "lambda")


@pytest.fixture(scope="module")
def setup64():
    """A float64 agent and a state one meta-step past initialisation (non-trivial optimiser state)."""
    with jax.enable_x64(True):
        cfg = tiny_config(agent={"learning_rate": 1e-2}, train={"dtype": "float64"})
        agent = make_agent(cfg)
        state = jax.jit(agent.init)(jax.random.PRNGKey(3))
        state, _ = jax.jit(agent.meta_step)(state, jnp.ones((1,)))
        meta_loss = jax.jit(lambda eta, key, w, adv: agent.meta_loss(eta, state, key, w, adv)[0])

        @jax.jit
        def grad_and_adv(key, w):
            """One program per K: the meta-gradient and the outer advantages A'_1..A'_K it used."""
            grad, (_, outputs) = agent.meta_gradient(state, key, w)
            return grad, outputs[4]["outer_advantages"]

        def meta_grad(key, w):
            return grad_and_adv(key, w)[0]

        yield cfg, agent, state, (meta_loss, grad_and_adv), meta_grad


def two_pass_inner_update(agent, params, opt_state, rollout, gamma, lambda_):
    """The inner update in its textbook form: target values from one critic pass outside
    ``jax.grad``, the loss's own passes inside (the agent does it all in one ``jax.vjp``)."""
    target_values = critic_values(agent.network.apply, params, rollout)
    grads, _ = jax.grad(a2c_inner_loss, has_aux=True)(
        params, rollout, target_values, gamma, lambda_, agent.network.apply, agent.coefs)
    updates, opt_state = agent.inner_opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def direct_k_step_gradients(agent, state, key, K):
    """[K, 2]: row k-1 is grad_eta L'(theta_k) (columns gamma, lambda), for k = 1..K, written as a
    plain Python loop of K two-pass inner updates, each followed by a separately computed outer
    loss (no scan, no weights, no shared one-pass code); ``jax.jacrev`` of the K losses gives the K
    gradients from one compiled program."""

    def losses(eta):
        gamma, lambda_ = jax.nn.sigmoid(eta["gamma"]), jax.nn.sigmoid(eta["lambda"])
        params, opt_state, env_carry, rollout = (state.params, state.inner_opt_state, state.env,
                                                 state.rollout)
        outer = []
        for i in range(K):
            params, opt_state = two_pass_inner_update(agent, params, opt_state, rollout, gamma,
                                                      lambda_)
            env_carry, rollout = agent.collect(params, env_carry, jax.random.fold_in(key, i))
            outer.append(outer_pg_loss(params, rollout, agent.outer_advantages(params, rollout),
                                       agent.network.apply))
        return jnp.stack(outer)

    jacobian = jax.jit(jax.jacrev(losses))(state.eta)  # {name: [K]}
    return np.stack([np.asarray(jacobian[name]) for name in ETA_KEYS], axis=1)


def as_vector(grad):
    return np.array([float(grad[k]) for k in ETA_KEYS])


@pytest.mark.parametrize("horizon", [1, 3])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_meta_gradient_matches_finite_differences(setup64, horizon, scheme):
    cfg, agent, state, (meta_loss, grad_and_adv), _ = setup64
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(11)
        w = jnp.asarray(scheme_weights(scheme_of(cfg, scheme), horizon), jnp.float64)
        # The outer advantages are policy-gradient coefficients (no gradient): freeze them at eta.
        grad, adv = grad_and_adv(key, w)
        analytic = as_vector(grad)
        eps = 1e-5
        numeric = []
        for name in ETA_KEYS:
            plus = dict(state.eta, **{name: state.eta[name] + eps})
            minus = dict(state.eta, **{name: state.eta[name] - eps})
            numeric.append((float(meta_loss(plus, key, w, adv)) - float(meta_loss(minus, key, w, adv)))
                           / (2 * eps))
        numeric = np.array(numeric)
    assert np.all(np.isfinite(analytic)) and np.all(np.abs(analytic) > 0)
    rel = np.abs(analytic - numeric) / np.abs(numeric)
    assert np.all(rel < 1e-4), f"K={horizon} {scheme}: analytic {analytic} vs numeric {numeric}"


def test_last_equals_direct_k_step_and_uniform_is_mean_of_k_steps(setup64):
    cfg, agent, state, _, meta_grad = setup64
    K = 3
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(5)
        direct = list(direct_k_step_gradients(agent, state, key, K))  # k = 1..K
        last = as_vector(meta_grad(key, jnp.asarray(scheme_weights(scheme_of(cfg, "last"), K))))
        uniform = as_vector(meta_grad(key, jnp.asarray(scheme_weights(scheme_of(cfg, "uniform"), K))))
        lam = as_vector(meta_grad(key, jnp.asarray(scheme_weights(scheme_of(cfg, "lambda_0.5"), K))))
    np.testing.assert_allclose(last, direct[-1], rtol=1e-9)
    np.testing.assert_allclose(uniform, np.mean(direct, axis=0), rtol=1e-9)
    # lambda scheme, rho = 0.5, K = 3: weights (0.5, 0.25, 0.25).
    np.testing.assert_allclose(lam, 0.5 * direct[0] + 0.25 * direct[1] + 0.25 * direct[2], rtol=1e-9)
    # The k-step gradients genuinely differ, so the identities above are not vacuous.
    assert not np.allclose(direct[0], direct[-1], rtol=1e-3)


def test_one_pass_inner_update_equals_the_two_pass_form(setup64):
    """Same new parameters, optimiser state and outer loss l_k as the textbook form."""
    _, agent, state, _, _ = setup64
    with jax.enable_x64(True):
        gamma, lambda_ = jnp.float64(0.9), jnp.float64(0.7)
        fused = jax.jit(agent.inner_update)(state.params, state.inner_opt_state, state.rollout,
                                            gamma, lambda_)
        reference = jax.jit(lambda *a: two_pass_inner_update(agent, *a))(
            state.params, state.inner_opt_state, state.rollout, gamma, lambda_)
        outer = jax.jit(lambda params, rollout: outer_pg_loss(
            params, rollout, agent.outer_advantages(params, rollout), agent.network.apply))(
            state.params, state.rollout)
    for a, b in zip(jax.tree.leaves(fused[:2]), jax.tree.leaves(reference), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fused[2]["outer"], outer, rtol=1e-10)
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                zip(jax.tree.leaves(fused[0]), jax.tree.leaves(state.params)))
    assert moved > 1e-6  # the update did something, so the equality is not vacuous


def test_all_schemes_agree_at_horizon_one(setup64):
    cfg, agent, state, _, meta_grad = setup64
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(7)
        grads = [as_vector(meta_grad(key, jnp.asarray(scheme_weights(scheme_of(cfg, s), 1))))
                 for s in SCHEMES]
        (direct,) = direct_k_step_gradients(agent, state, key, 1)
    for g in grads:
        np.testing.assert_allclose(g, direct, rtol=1e-9)


@pytest.fixture(scope="module")
def tiny32():
    """The float32 tiny agent at initialisation and its jitted meta-gradient (shared by tests)."""
    agent = make_agent(tiny_config())
    return agent, jax.jit(agent.init)(jax.random.PRNGKey(0)), jax.jit(agent.meta_gradient)


def test_meta_gradient_finite_and_nonzero_at_initialisation(tiny32):
    agent, state, meta_gradient = tiny32
    for K in (1, 3):
        grad, _ = meta_gradient(state, jax.random.PRNGKey(1), jnp.full((K,), 1.0 / K))
        g = as_vector(grad)
        assert np.all(np.isfinite(g)), g
        assert np.all(np.abs(g) > 0), f"meta-gradient is zero at K={K}: {g}"


def test_stopping_gradient_on_the_whole_target_would_zero_the_meta_gradient(tiny32):
    """Guard for the classic bug: with gamma and lambda detached the meta-gradient vanishes."""
    agent, state, meta_gradient = tiny32
    w = jnp.ones((1,))

    def detached(eta):
        frozen = jax.tree.map(jax.lax.stop_gradient, eta)
        return agent.meta_loss(frozen, state, jax.random.PRNGKey(1), w)[0]

    g = as_vector(jax.jit(jax.grad(detached))(state.eta))
    assert np.all(g == 0)
    real = as_vector(meta_gradient(state, jax.random.PRNGKey(1), w)[0])
    assert np.all(real != 0)


@pytest.mark.parametrize("strides, padding", [((), "VALID"), ((2, 1), "SAME")])
def test_matmul_convolution_equals_haiku_conv2d(strides, padding):
    """The fast CPU convolution has hk.Conv2D's parameters and outputs (and gradients): VALID at
    stride 1 (this project's), and SAME with strides 2 then 1 (the authors' torso: 6x6 -> 3x3)."""

    from mgrl.config import NetworkConfig
    from mgrl.networks import make_actor_critic

    geometry = {"conv_strides": strides, "conv_padding": padding}
    fast = make_actor_critic(NetworkConfig((3, 5), 2, (8,), (8,), conv_impl="matmul", **geometry))
    slow = make_actor_critic(NetworkConfig((3, 5), 2, (8,), (8,), conv_impl="xla", **geometry))
    grid = jax.random.uniform(jax.random.PRNGKey(0), (7, 6, 6, 5))
    mask = jnp.ones((7, 4), bool).at[:, 1].set(False)
    # jitted (one program each): run op by op, Haiku's init and apply compile ~150 tiny programs
    params = jax.jit(slow.init)(jax.random.PRNGKey(1), grid, mask)
    fast_params = jax.jit(fast.init)(jax.random.PRNGKey(1), grid, mask)
    assert jax.tree.structure(params) == jax.tree.structure(fast_params)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, fast_params)
    for a, b in zip(jax.jit(fast.apply)(params, grid, mask), jax.jit(slow.apply)(params, grid, mask)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

    def loss(net, p):
        logits, value = net.apply(p, grid, mask)
        return jnp.sum(jnp.where(mask, logits, 0.0) ** 2) + jnp.sum(value ** 2)

    g_fast = jax.jit(jax.grad(lambda p: loss(fast, p)))(params)
    g_slow = jax.jit(jax.grad(lambda p: loss(slow, p)))(params)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_slow)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fresh_validation_meta_gradient_matches_finite_differences_and_a_by_hand_window():
    """meta.validation fresh: after each inner update theta_{k+1} collects V_{k+1} and the outer
    loss is L'(theta_{k+1}; V_{k+1}). The outer losses equal a plain loop (two-pass updates,
    validation and training rollouts collected by hand in the same order and keys), and the
    meta-gradient of a K = 2 mixing window equals central finite differences (advantages frozen)."""
    from mgrl.agent import VALIDATION_KEYS

    with jax.enable_x64(True):
        cfg = tiny_config(agent={"learning_rate": 1e-2}, train={"dtype": "float64"},
                          meta={"validation": "fresh"})
        agent = make_agent(cfg)
        state = jax.jit(agent.init)(jax.random.PRNGKey(3))
        key, w = jax.random.PRNGKey(11), jnp.asarray([0.4, 0.6])

        @jax.jit
        def by_hand(eta):
            gamma, lambda_ = jax.nn.sigmoid(eta["gamma"]), jax.nn.sigmoid(eta["lambda"])
            params, opt_state, env_carry, rollout = (state.params, state.inner_opt_state,
                                                     state.env, state.rollout)
            outer = []
            for i in range(2):
                params, opt_state = two_pass_inner_update(agent, params, opt_state, rollout, gamma,
                                                          lambda_)
                env_carry, validation = agent.collect(params, env_carry,
                                                      jax.random.fold_in(key, VALIDATION_KEYS + i))
                outer.append(outer_pg_loss(params, validation,
                                           agent.outer_advantages(params, validation),
                                           agent.network.apply))
                env_carry, rollout = agent.collect(params, env_carry, jax.random.fold_in(key, i))
            return jnp.stack(outer)

        grad, (_, outputs) = jax.jit(agent.meta_gradient)(state, key, w)
        np.testing.assert_allclose(np.asarray(outputs[4]["outer"]),
                                   np.asarray(by_hand(state.eta)), rtol=1e-10)
        adv = outputs[4]["outer_advantages"]
        loss = jax.jit(lambda eta: agent.meta_loss(eta, state, key, w, adv)[0])
        eps = 1e-5
        numeric = np.array([(float(loss(dict(state.eta, **{n: state.eta[n] + eps})))
                             - float(loss(dict(state.eta, **{n: state.eta[n] - eps})))) / (2 * eps)
                            for n in ETA_KEYS])
        analytic = as_vector(grad)
    assert np.all(np.abs(analytic) > 0)
    assert np.all(np.abs(analytic - numeric) / np.abs(numeric) < 1e-4), (analytic, numeric)


def test_fresh_validation_counts_its_rollouts_and_a2c_collects_none():
    from mgrl.config import SchemeConfig

    cfg = tiny_config(meta={"validation": "fresh"})
    fresh = make_agent(cfg)
    a2c = make_agent(tiny_config(meta={"validation": "fresh", "learn": []}))
    bmg = make_agent(cfg, SchemeConfig("bmg", bootstrap_steps=1))  # its target has its own
    assert [agent.rollouts_per_update() for agent in (fresh, a2c, bmg)] == [2, 1, 1]
    assert fresh.extra_env_steps(10, 2) == 0  # M = 1: every step is real interaction
