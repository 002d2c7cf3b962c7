"""Meta-gradient estimator probes: variance, bias and signal-to-noise on saved training states.

A probe freezes one training state (a checkpoint of the seed's ``a2c`` baseline run) and draws
meta-gradient samples from it for every horizon K and scheme w, one per key m::

    g_m = grad_eta sum_k w_k L'(theta_k; R_k^(m)),   m = 1..M,   keys key_1..key_M (fresh rollouts)

Each sample shares the state (theta_0, optimiser state s_0, environments, stored rollout R_0) and
differs only in the rollouts R_1..R_K collected inside the window, so the statistics describe the
estimator's noise *conditional on the state*.

One forward pass per key. The first k steps of a K-window equal the k-window with the same key,
so the Jacobian J_m [K_ref, D] of the outer losses l_1..l_Kref w.r.t. eta, computed in forward
mode in one pass (:meth:`mgrl.agent.MetaGradientAgent.outer_loss_jacobian`), gives every
weighting scheme's sample at every K <= K_ref: g_m(K, w) = w @ J_m[:K]. The reference, ``last`` at
K_ref = probe.reference_horizon, is row K_ref of the same pass: g_ref,m = J_m[K_ref - 1]. So the
M_ref reference samples and the M estimate samples share their first min(M, M_ref) keys (paired
samples); keys beyond M_ref, if M > M_ref, get a pass at K_max only. Sharing keys neither helps
nor hurts the variance of the bias statistics (measured: docs/probes.md), and it makes the
estimates free once the reference is paid for. Schemes whose agent differs (their own outer
critic) get their own forward pass at K_max with the same keys; ``bmg`` schemes (not a weighting
of the outer losses) a reverse-mode gradient per (K, scheme), with the same keys.

Statistics over every meta-parameter's direction, D = 2 (gamma and lambda, learned or not), from
:func:`mgrl.stats.estimator_statistics`: ``step_cosine`` (the angle between the expected Adam
steps of the estimator and of the reference, the bias measure of C1), the variance trace, SNR,
the direction variance, the raw-mean cosine and the debiased squared bias (paired-corrected). 95%
confidence intervals are percentile bootstraps that resample the paired keys together
(:func:`mgrl.stats.bootstrap_intervals`), inside each statistic's range.

Common random numbers: every (K, scheme) of a state uses the same keys, so schemes and horizons
are compared on identical rollouts (a ``bmg`` window's first K updates are those of the K-step
window); estimators that coincide (same weights, outer-advantage source and BMG L; all weighting
schemes at K = 1, and schemes that differ only in ``meta_samples``:
:func:`mgrl.estimators.sample_identity`) are computed once and shared. A
``bmg`` sample is the gradient of its KL matching loss; its scale differs from a policy-gradient
loss's, so compare estimators by the scale-free statistics (step cosine, SNR, direction variance).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from mgrl import checkpoint as ckpt
from mgrl import metrics as metrics_io
from mgrl.io import write_parquet_atomic
from mgrl.code import PROBE_MODULES, TRAINING_MODULES, code_hash
from mgrl.agent import AgentState, MetaGradientAgent
from mgrl.config import META_PARAMETERS, ExperimentConfig
from mgrl.estimators import (BASELINE_SCHEME, bootstrap_of, exists_at, sample_identity,
                             run_config, scheme_of, scheme_weights, uses_outer_critic)
from mgrl.losses import gae_advantages, rollout_outputs
from mgrl.stats import bootstrap_intervals, estimator_statistics, normalised_step
from mgrl.train import make_agent, make_train

log = logging.getLogger("mgrl")

PROBE_STREAM = 0x9B0BE  # folded into the seed's key so probe keys never repeat training keys
PASS_STREAM = 0  # folded into a checkpoint's key for the keys of its forward passes
SOURCE_SCHEME, SOURCE_HORIZON = BASELINE_SCHEME, 1  # probed states come from the a2c baseline run

_PROVENANCE = ("git_sha", "config_hash", "code_hash", "jax_version", "jumanji_version", "haiku_version",
               "optax_version")

SAMPLE_COLUMNS: dict[str, str] = {
    "experiment": "experiment name (config `name`)",
    "seed": "training seed whose a2c checkpoint is probed (also seeds the probe keys)",
    "interval": "training interval of the probed checkpoint (probe.checkpoints)",
    "env_steps": "environment steps of the probed state (per seed)",
    "role": "'estimate' (a (K, scheme) sample) or 'reference' (scheme last at K_ref)",
    "horizon": "K, inner updates in the meta-gradient window (K_ref for reference rows)",
    "scheme": "outer-loss weighting scheme name ('last' for reference rows)",
    "meta_parameter": "gamma or lambda: d meta-loss / d eta_<param> (raw, unclipped); every "
                      "meta-parameter is written, learned or not",
    "sample": "key index m: at one interval, sample m of every (K, scheme) and reference sample m "
              "come from the same key (one forward pass)",
    "value": "the meta-gradient component",
    **{c: metrics_io.COLUMNS[c] for c in _PROVENANCE},
}


def _statistic_columns(name: str, text: str) -> dict[str, str]:
    return {name: text, f"{name}_lo": f"bootstrap 2.5% quantile of {name}",
            f"{name}_hi": f"bootstrap 97.5% quantile of {name}"}


SUMMARY_COLUMNS: dict[str, str] = {
    "experiment": "experiment name (config `name`)",
    "seed": "training seed whose a2c checkpoint is probed",
    "interval": "training interval of the probed checkpoint",
    "env_steps": "environment steps of the probed state (per seed)",
    "horizon": "K, inner updates in the meta-gradient window",
    "scheme": "outer-loss weighting scheme name",
    "num_samples": "M, meta-gradient samples behind the row",
    "probed_parameters": "comma-separated meta-parameters the statistics use: every one, learned or "
                         "not (gamma,lambda)",
    "shared_samples": "c, samples paired with reference samples (same keys): min(M, M_ref)",
    **_statistic_columns("step_cosine", "cosine of the expected Adam steps a = mean / RMS per "
                                        "component of the samples and of the reference samples "
                                        "(in [-1, 1]; the bias measure of C1)"),
    **_statistic_columns("variance_trace", "trace of the per-component unbiased sample variance "
                                           "over the probed parameters"),
    **_statistic_columns("snr", "signal-to-noise ||mean||^2 / variance_trace (probed parameters)"),
    **_statistic_columns("cosine_to_reference", "cosine of the sample mean with the reference mean "
                                                "(probed parameters; in [-1, 1])"),
    **_statistic_columns("bias2_debiased", "debiased squared bias ||mean - reference||^2 minus "
                                           "the trace of the variance of the difference (paired "
                                           "keys' covariance included): unbiased for ||E g - E "
                                           "g_ref||^2 in raw units, can be < 0"),
    **_statistic_columns("direction_variance", "trace of the unbiased variance of the unit vectors "
                                               "g_m / ||g_m||: scale-free (0: all samples point the "
                                               "same way; ~1: spread out)"),
    **{col: text for p in META_PARAMETERS for col, text in {
        **_statistic_columns(f"mean_{p}", f"sample mean of d meta-loss / d eta_{p}"),
        f"var_{p}": f"unbiased sample variance of d meta-loss / d eta_{p}",
        f"reference_{p}": f"reference mean of d meta-loss / d eta_{p} (last scheme at K_ref)",
        f"reference_var_{p}": f"unbiased sample variance of the reference samples of d meta-loss / "
                              f"d eta_{p}",
        f"step_{p}": f"expected Adam step of eta_{p}: mean / RMS of the samples (in [-1, 1])",
        f"reference_step_{p}": f"the reference's expected Adam step of eta_{p} (in [-1, 1])",
    }.items()},
    "reference_horizon": "K_ref of the reference estimator",
    "reference_samples": "M_ref, samples behind the reference",
    "reference_advantages": "A' of the reference's outer loss (probe.reference_advantages): critic "
                            "or returns (Monte Carlo, no critic's bias)",
    "bootstrap_resamples": "bootstrap resamples behind every CI",
    **{c: metrics_io.COLUMNS[c] for c in _PROVENANCE},
}

# ------------------------------------------------------------------------------- states, keys --


def find_probe_checkpoint(
    cfg: ExperimentConfig, run_dir: str | Path, seed: int, interval: int
) -> tuple[Path, list[int]]:
    """The checkpoint folder of ``interval`` in the a2c run ``run_dir`` that holds ``seed``.

    Looks at ``run_dir/checkpoints/<config hash>-<code hash>/interval_NNNNNN`` (the layout of
    :func:`mgrl.train.run_training`); the folder must belong to ``cfg``: its manifest's config hash
    is that of ``run_config(cfg, 1, "a2c", seeds)``, which ignores probe sizes, other horizons and
    schemes, and its code hash that of today's training code. Returns (folder, the run's seeds [S]).
    """
    root = Path(run_dir) / "checkpoints"
    name = ckpt.path_of(root, interval).name
    training_code = code_hash(TRAINING_MODULES)
    problems = []
    for path in sorted(root.glob(f"*/{name}")):
        if not (path / "manifest.json").is_file():
            continue
        try:
            manifest = json.loads((path / "manifest.json").read_text())
            seeds = [int(s) for s in manifest["seeds"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ckpt.CheckpointError(
                f"checkpoint {path}: unreadable manifest.json ({err})") from err
        expected = run_config(cfg, SOURCE_HORIZON, SOURCE_SCHEME, seeds).hash()
        if int(seed) not in seeds:
            problems.append(f"{path} holds seeds {seeds}, not seed {seed}")
        elif manifest.get("run") != f"K{SOURCE_HORIZON}-{SOURCE_SCHEME}":
            problems.append(f"{path} is a checkpoint of run {manifest.get('run')!r}")
        elif manifest.get("config_hash") != expected:
            problems.append(f"{path} belongs to another config (config_hash "
                            f"{manifest.get('config_hash')!r} != {expected!r})")
        elif manifest.get("code_hash") != training_code:
            problems.append(f"{path} was written by other training code (code_hash "
                            f"{manifest.get('code_hash')!r} != {training_code!r})")
        else:
            return path, seeds
    if not problems:
        raise ckpt.CheckpointError(
            f"checkpoint {root}/<config hash>-<code hash>/{name} does not exist: the probe "
            f"needs interval {interval} of the '{SOURCE_SCHEME}' run, kept when it is listed in "
            f"probe.checkpoints")
    raise ckpt.CheckpointError(f"no usable checkpoint of interval {interval} for seed {seed}: "
                               + "; ".join(problems))


def load_probe_state(
    cfg: ExperimentConfig, run_dir: str | Path, seed: int, interval: int
) -> AgentState:
    """The single-seed AgentState of ``seed`` at ``interval`` in the a2c baseline run ``run_dir``.

    The checkpoint (see :func:`find_probe_checkpoint`) holds all the run's seeds on a leading axis
    S; the slice of ``seed`` is returned, leaves without the seed axis.

    Raises:
      CheckpointError: naming the path, if the checkpoint is missing, damaged, of another run or
        config, or does not hold ``seed``.
    """
    path, seeds = find_probe_checkpoint(cfg, run_dir, seed, interval)
    trainer = make_train(cfg, SOURCE_HORIZON, SOURCE_SCHEME)
    template = jax.eval_shape(trainer.init, jnp.asarray(seeds))
    run_cfg = run_config(cfg, SOURCE_HORIZON, SOURCE_SCHEME, seeds)  # as run_training stamps it
    identity = metrics_io.run_identity(run_cfg, SOURCE_HORIZON, SOURCE_SCHEME, seeds)
    _, batched, _ = ckpt.load(path, template, identity)
    index = seeds.index(int(seed))
    return jax.tree.map(lambda leaf: jnp.asarray(leaf[index]), batched)


def _interval_key(seed: int, interval: int) -> chex.PRNGKey:
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), PROBE_STREAM), interval)


def probe_keys(seed: int, interval: int, num_samples: int) -> chex.PRNGKey:
    """Keys of the probe passes at (seed, interval), [max(M, M_ref), 2]: key m drives sample m of
    every (K, scheme) and reference sample m."""
    return jax.random.split(jax.random.fold_in(_interval_key(seed, interval), PASS_STREAM),
                            num_samples)


# ----------------------------------------------------------------------------------- sampling --


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

    :func:`weighted_samples` turns it into every weighting scheme's samples at every horizon
    <= K. ``samples_per_batch`` as in :func:`sample_meta_gradients`; forward mode keeps no inner
    step, so memory does not grow with K.
    """

    def one_pass(key: chex.PRNGKey) -> chex.Array:
        jacobian, _ = agent.outer_loss_jacobian(state, key, horizon)
        return jacobian

    if samples_per_batch is None or samples_per_batch >= keys.shape[0]:
        return jax.vmap(one_pass)(keys)
    return jax.lax.map(one_pass, keys, batch_size=samples_per_batch)


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
        values, _ = agent._exact_values(rollout, logits, gamma, None)
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

    if samples_per_batch is None or samples_per_batch >= keys.shape[0]:
        return jax.vmap(one)(keys)
    return jax.lax.map(one, keys, batch_size=samples_per_batch)


def weighted_samples(jacobians: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Samples [M, D] of the weighting ``weights`` [K] from one-pass Jacobians [M, K_pass, D],
    K <= K_pass: g_m = sum_k w_k J[m, k-1] (float64)."""
    jacobians = np.asarray(jacobians, np.float64)
    weights = np.asarray(weights, np.float64)
    if len(weights) > jacobians.shape[1]:
        raise ValueError(f"a K = {len(weights)} weighting needs passes of >= {len(weights)} steps, "
                         f"got {jacobians.shape[1]}")
    return np.einsum("k,mkd->md", weights, jacobians[:, :len(weights)])


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
    by default a single ``vmap`` over all M keys. ``weights`` [K] is a traced argument, so one
    compiled program per (agent, K, M) serves every scheme. Gradients are raw (unmasked, unclipped)
    for every meta-parameter.

    ``samples_per_batch`` = b < M instead maps sequentially over chunks of b vmapped samples
    (``lax.map``; b = 1 is a compiled loop): memory O(b K) instead of O(M K), and on CPU faster,
    since vmapping per-sample parameters turns convolutions into grouped ones
    (benchmarks/probe_vmap.py). The samples are the same up to float rounding.
    """

    def one_sample(key: chex.PRNGKey) -> chex.Array:
        grad, _ = agent.meta_gradient(state, key, weights)
        return jnp.stack([grad[p] for p in META_PARAMETERS])

    if samples_per_batch is None or samples_per_batch >= keys.shape[0]:
        return jax.vmap(one_sample)(keys)
    return jax.lax.map(one_sample, keys, batch_size=samples_per_batch)


# --------------------------------------------------------------------------------- statistics --

SUMMARY_STATISTICS = ("step_cosine", "variance_trace", "snr", "cosine_to_reference",
                      "bias2_debiased", "direction_variance")


def summarise_samples(
    samples: np.ndarray,
    reference_samples: np.ndarray,
    shared: int,
    num_resamples: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """One summary row's statistics from samples [M, D] and reference samples [M_ref, D], D = 2
    (every meta-parameter's component, learned or not), the first ``shared`` rows paired."""
    samples = np.asarray(samples, np.float64)
    reference_samples = np.asarray(reference_samples, np.float64)
    every = estimator_statistics(samples, reference_samples, shared)
    every_ci = bootstrap_intervals(samples, reference_samples, shared, num_resamples, rng)
    row: dict[str, float] = {"shared_samples": shared}
    for name in SUMMARY_STATISTICS:
        row[name] = float(every[name])
        row[f"{name}_lo"], row[f"{name}_hi"] = (float(v) for v in every_ci[name])
    reference_variance = (reference_samples.var(axis=0, ddof=1) if len(reference_samples) > 1
                          else np.zeros(len(META_PARAMETERS)))
    reference_step = normalised_step(reference_samples)
    for d, p in enumerate(META_PARAMETERS):
        row[f"mean_{p}"] = float(every["mean"][d])
        row[f"mean_{p}_lo"] = float(every_ci["mean"][0][d])
        row[f"mean_{p}_hi"] = float(every_ci["mean"][1][d])
        row[f"var_{p}"] = float(every["variance"][d])
        row[f"reference_{p}"] = float(reference_samples[:, d].mean())
        row[f"reference_var_{p}"] = float(reference_variance[d])
        row[f"step_{p}"] = float(every["step"][d])
        row[f"reference_step_{p}"] = float(reference_step[d])
    return row


# -------------------------------------------------------------------------------------- driver --


def _sample_frame(values: np.ndarray, base: dict) -> pd.DataFrame:
    """Long form of samples [M, 2]: one row per (sample, meta-parameter)."""
    num_samples = values.shape[0]
    return pd.DataFrame({
        **{k: [v] * (num_samples * len(META_PARAMETERS)) for k, v in base.items()},
        "meta_parameter": np.tile(np.asarray(META_PARAMETERS, dtype=object), num_samples),
        "sample": np.repeat(np.arange(num_samples, dtype=np.int64), len(META_PARAMETERS)),
        "value": np.asarray(values, np.float64).reshape(-1),
    })


class _Agents:
    """The agents that draw each scheme's samples, one per distinct (outer critic, L).

    Every agent has the network of the probed a2c state (with an outer critic when any scheme uses
    one); a scheme's agent takes its outer advantages from the outer critic if the scheme uses it
    (:func:`mgrl.estimators.uses_outer_critic`) and is a BMG agent with the scheme's L for a
    ``bmg`` scheme. The reference (``last`` at K_ref) uses ``agent.outer_critic``.
    """

    def __init__(self, cfg: ExperimentConfig):
        self.cfg = cfg
        self.network_outer_critic = uses_outer_critic(cfg, SOURCE_SCHEME)
        self._agents: dict[tuple, MetaGradientAgent] = {}

    def agent(self, scheme: str | None) -> MetaGradientAgent:
        if scheme is None:
            outer_critic, scheme_cfg = self.cfg.agent.outer_critic, None
        else:
            outer_critic, scheme_cfg = uses_outer_critic(self.cfg, scheme), scheme_of(self.cfg, scheme)
        key = outer_critic, bootstrap_of(scheme_cfg)
        if key not in self._agents:
            cfg = dataclasses.replace(self.cfg, agent=dataclasses.replace(
                self.cfg.agent, outer_critic=outer_critic))
            self._agents[key] = make_agent(cfg, scheme_cfg if key[1] else None,
                                           outer_critic_network=self.network_outer_critic)
        return self._agents[key]


def _is_weighting(cfg: ExperimentConfig, scheme: str) -> bool:
    return bootstrap_of(scheme_of(cfg, scheme)) is None


def run_probe(
    cfg: ExperimentConfig,
    run_dir: str | Path,
    seed: int,
    out_dir: str | Path,
    samples_per_batch: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe seed ``seed`` of the a2c run in ``run_dir`` at every ``probe.checkpoints`` interval.

    For each interval: keys 1..max(M, M_ref); a forward pass at K_ref for the first M_ref keys (the
    reference and, for the first M keys, every weighting scheme of the reference's agent at every
    K), a pass at K_max for keys beyond M_ref, one per other agent at K_max, a reverse pass per
    ``bmg`` (K, scheme). Writes ``out_dir/samples.parquet`` (:data:`SAMPLE_COLUMNS`) and
    ``out_dir/summary.parquet`` (:data:`SUMMARY_COLUMNS`) atomically and returns (samples,
    summary). Deterministic in (cfg, checkpoint, seed): keys from (seed, interval), bootstrap
    seeded by (seed, interval, K). ``samples_per_batch`` is passed to the samplers (None:
    ``probe.samples_per_batch`` of the config, whose own None means one vmap of all keys).
    """
    if samples_per_batch is None:
        samples_per_batch = cfg.probe.samples_per_batch
    seed = int(seed)
    probe_cfg = cfg.probe
    num, num_ref, k_ref = probe_cfg.num_samples, probe_cfg.reference_samples, probe_cfg.reference_horizon
    shared = min(num, num_ref)
    k_max = max(cfg.horizons)
    agents = _Agents(cfg)
    reference_agent = agents.agent(None)
    provenance = metrics_io.provenance(cfg, PROBE_MODULES)
    sample_frames, summary_rows = [], []
    for interval in probe_cfg.checkpoints:
        state = load_probe_state(cfg, run_dir, seed, interval)
        env_steps = int(state.env_steps)
        keys = probe_keys(seed, interval, max(num, num_ref))
        t = time.perf_counter()
        if probe_cfg.reference_advantages == "returns":
            reference = np.asarray(sample_return_references(
                reference_agent, state, keys[:num_ref], k_ref, probe_cfg.return_steps,
                samples_per_batch=samples_per_batch))
            passes = {id(reference_agent): np.asarray(sample_outer_loss_jacobians(
                reference_agent, state, keys[:num], k_max, samples_per_batch=samples_per_batch))}
        else:
            reference_pass = np.asarray(sample_outer_loss_jacobians(
                reference_agent, state, keys[:num_ref], k_ref, samples_per_batch=samples_per_batch))
            reference = reference_pass[:, k_ref - 1]
            passes = {id(reference_agent): reference_pass[:shared, :k_max]}
        if num > num_ref and probe_cfg.reference_advantages == "critic":
            extra = np.asarray(sample_outer_loss_jacobians(
                reference_agent, state, keys[num_ref:num], k_max,
                samples_per_batch=samples_per_batch))
            passes[id(reference_agent)] = np.concatenate([passes[id(reference_agent)], extra])
        log.info("probe seed %d interval %d: %d passes of K_ref=%d in %.1fs", seed, interval,
                 num_ref, k_ref, time.perf_counter() - t)
        where = dict(provenance, seed=seed, interval=interval, env_steps=env_steps)
        sample_frames.append(_sample_frame(reference, dict(
            where, role="reference", horizon=k_ref, scheme="last")))
        by_estimator: dict[tuple, np.ndarray] = {}
        for horizon in cfg.horizons:
            t = time.perf_counter()
            for scheme in [s for s in cfg.schemes if exists_at(cfg.schemes[s], horizon)]:
                estimator = sample_identity(cfg, scheme, horizon)
                if estimator not in by_estimator:
                    agent = agents.agent(scheme)
                    weights = scheme_weights(cfg.schemes[scheme], horizon)
                    if not _is_weighting(cfg, scheme):
                        by_estimator[estimator] = np.asarray(sample_meta_gradients(
                            agent, state, keys[:num], jnp.asarray(weights, jnp.float32),
                            samples_per_batch=samples_per_batch))
                    else:
                        if id(agent) not in passes:
                            passes[id(agent)] = np.asarray(sample_outer_loss_jacobians(
                                agent, state, keys[:num], k_max,
                                samples_per_batch=samples_per_batch))
                        by_estimator[estimator] = weighted_samples(passes[id(agent)], weights)
                samples = by_estimator[estimator]
                if not np.all(np.isfinite(samples)):
                    log.warning("probe seed %d interval %d K=%d %s: non-finite meta-gradients",
                                seed, interval, horizon, scheme)
                sample_frames.append(_sample_frame(samples, dict(
                    where, role="estimate", horizon=horizon, scheme=scheme)))
                rng = np.random.default_rng([seed, interval, horizon])  # same resamples per scheme
                summary_rows.append(dict(
                    where, horizon=horizon, scheme=scheme, num_samples=num,
                    probed_parameters=",".join(META_PARAMETERS),
                    **summarise_samples(samples, reference, shared, probe_cfg.bootstrap, rng),
                    reference_horizon=k_ref, reference_samples=num_ref,
                    reference_advantages=probe_cfg.reference_advantages,
                    bootstrap_resamples=probe_cfg.bootstrap))
            log.info("probe seed %d interval %d K=%d: %d estimators in %.1fs", seed, interval,
                     horizon, len(by_estimator), time.perf_counter() - t)
    samples_frame = _typed(pd.concat(sample_frames, ignore_index=True), SAMPLE_COLUMNS)
    summary_frame = _typed(pd.DataFrame(summary_rows), SUMMARY_COLUMNS)
    out_dir = Path(out_dir)
    write_parquet_atomic(samples_frame, out_dir / "samples.parquet")
    write_parquet_atomic(summary_frame, out_dir / "summary.parquet")
    log.info("probe seed %d: wrote %d samples and %d summary rows to %s",
             seed, len(samples_frame), len(summary_frame), out_dir)
    return samples_frame, summary_frame


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Documented columns in documented order; integer columns as int64."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"probe output lacks documented columns {missing}")
    frame = frame[list(columns)].copy()
    for col in ("seed", "interval", "env_steps", "horizon", "sample", "num_samples", "shared_samples",
                "reference_horizon", "reference_samples", "bootstrap_resamples"):
        if col in frame.columns:
            frame[col] = frame[col].astype("int64")
    return frame
