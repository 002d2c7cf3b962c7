"""Meta-gradient estimator probes: variance, bias and signal-to-noise on saved training states.

A probe freezes one training state (a checkpoint of the seed's ``a2c`` baseline run) and draws M
independent meta-gradient samples from it for every horizon K and scheme w::

    g_m = grad_eta sum_k w_k L'(theta_k; R_k^(m)),   m = 1..M,   keys key_1..key_M (fresh rollouts)

Each sample shares the state (theta_0, optimiser state s_0, environments, stored rollout R_0) and
differs only in the rollouts R_1..R_K collected inside the window, so the statistics describe the
estimator's noise *conditional on the state*. The estimate of the "true" meta-gradient is the
reference g_ref = mean of M_ref samples of the ``last`` scheme at K_ref = probe.reference_horizon,
drawn from the same state with keys of their own (independent of every estimate's keys).

Statistics over every meta-parameter's direction, D = 2 (gamma and lambda, learned or not: with
one learned parameter the cosine of a 1-d mean is only its sign; the meta-gradient w.r.t. the
unlearned lambda is still a direction the estimator gets right or wrong)::

    mean     = (1/M) sum_m g_m                                   [D]
    Var      = (1/(M-1)) sum_m (g_m - mean)^2                    [D]  (per component, unbiased)
    trace    = sum_d Var_d
    cosine   = <mean, g_ref> / (||mean|| ||g_ref||)
    rel_err  = ||mean - g_ref|| / ||g_ref||
    snr      = ||mean||^2 / trace                                 (per-sample signal-to-noise)
    bias2    = ||mean - g_ref||^2 - trace / M - trace_ref / M_ref (unbiased for ||E g - E g_ref||^2)
    rel_bias2 = bias2 / ||g_ref||^2
    direction_variance = sum_d Var_m[g_m / ||g_m||]_d             (scale-free)

The formulas live in :mod:`mgrl.stats`. 95% confidence intervals are percentile bootstraps: the M
samples and the M_ref reference samples are resampled with replacement (independently), the
statistics recomputed, and the 2.5% and 97.5% quantiles reported (inside [-1, 1] for the cosine,
>= 0 for positive statistics).

Common random numbers: at a given (checkpoint interval, K) every scheme uses the same M keys, so
schemes are compared on identical rollouts (a ``bmg`` window's first K updates are those of the
K-step window); estimators that coincide (same weights, outer-advantage source and BMG L: all
weighting schemes at K = 1; :func:`mgrl.estimators.estimator_identity`) are sampled once and the
samples are shared by every scheme that has them. A ``bmg`` sample is the gradient of its KL
matching loss and a scheme with the outer critic takes A' from it (:class:`_Agents`); their scale differs from a policy-gradient loss's, so
compare estimators by the scale-free statistics: cosine, SNR and ``direction_variance``.
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
from mgrl.config import META_PARAMETERS, ExperimentConfig, SchemeConfig
from mgrl.estimators import (BASELINE_SCHEME, bootstrap_steps, estimator_identity, exists_at,
                             run_config, scheme_of, scheme_weights, uses_outer_critic)
from mgrl.stats import bootstrap_intervals, estimator_statistics_from_samples
from mgrl.train import make_agent, make_train

log = logging.getLogger("mgrl")

PROBE_STREAM = 0x9B0BE  # folded into the seed's key so probe keys never repeat training keys
REFERENCE_STREAM = 0  # K >= 1, so stream 0 of a checkpoint is free for the reference samples
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
    "sample": "sample index m; at one (interval, K) sample m uses the same key in every scheme",
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
    **_statistic_columns("variance_trace", "trace of the per-component unbiased sample variance "
                                           "over the probed parameters"),
    **_statistic_columns("snr", "signal-to-noise ||mean||^2 / variance_trace (probed parameters)"),
    **_statistic_columns("cosine_to_reference", "cosine of the sample mean with the reference mean "
                                                "(probed parameters; in [-1, 1])"),
    **_statistic_columns("relative_error", "||mean - reference|| / ||reference|| (probed "
                                           "parameters)"),
    **_statistic_columns("bias2_debiased", "debiased squared bias ||mean - reference||^2 - "
                                           "variance_trace / M - reference variance trace / M_ref: "
                                           "unbiased for ||E g - E g_ref||^2, can be < 0"),
    **_statistic_columns("relative_bias2", "bias2_debiased / ||reference||^2 (a per-state unit "
                                           "shared by every estimator)"),
    **_statistic_columns("direction_variance", "trace of the unbiased variance of the unit vectors "
                                               "g_m / ||g_m||: scale-free (0: all samples point the "
                                               "same way; ~1: spread out)"),
    **{col: text for p in META_PARAMETERS for col, text in {
        **_statistic_columns(f"mean_{p}", f"sample mean of d meta-loss / d eta_{p}"),
        f"var_{p}": f"unbiased sample variance of d meta-loss / d eta_{p}",
        f"reference_{p}": f"reference mean of d meta-loss / d eta_{p} (last scheme at K_ref)",
        f"reference_var_{p}": f"unbiased sample variance of the reference samples of d meta-loss / "
                              f"d eta_{p}",
    }.items()},
    "reference_horizon": "K_ref of the reference estimator",
    "reference_samples": "M_ref, samples behind the reference",
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


def probe_keys(seed: int, interval: int, horizon: int, num_samples: int) -> chex.PRNGKey:
    """Keys of the M estimate samples at (seed, interval, K), [M, 2]; shared by every scheme."""
    return jax.random.split(jax.random.fold_in(_interval_key(seed, interval), horizon), num_samples)


def reference_keys(seed: int, interval: int, num_samples: int) -> chex.PRNGKey:
    """Keys of the M_ref reference samples at (seed, interval), [M_ref, 2]; unused by estimates."""
    return jax.random.split(jax.random.fold_in(_interval_key(seed, interval), REFERENCE_STREAM),
                            num_samples)


# ----------------------------------------------------------------------------------- sampling --


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

SUMMARY_STATISTICS = ("variance_trace", "snr", "cosine_to_reference", "relative_error",
                      "bias2_debiased", "relative_bias2", "direction_variance")


def summarise_samples(
    samples: np.ndarray,
    reference_samples: np.ndarray,
    num_resamples: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """One summary row's statistics from samples [M, D] and reference samples [M_ref, D], D = 2:
    every meta-parameter's component, learned or not (see the module docstring)."""
    samples = np.asarray(samples, np.float64)
    reference_samples = np.asarray(reference_samples, np.float64)
    every = estimator_statistics_from_samples(samples, reference_samples)
    every_ci = bootstrap_intervals(samples, reference_samples, num_resamples, rng)
    row: dict[str, float] = {}
    for name in SUMMARY_STATISTICS:
        row[name] = float(every[name])
        row[f"{name}_lo"], row[f"{name}_hi"] = (float(v) for v in every_ci[name])
    reference_variance = (reference_samples.var(axis=0, ddof=1) if len(reference_samples) > 1
                          else np.zeros(len(META_PARAMETERS)))
    for d, p in enumerate(META_PARAMETERS):
        row[f"mean_{p}"] = float(every["mean"][d])
        row[f"mean_{p}_lo"] = float(every_ci["mean"][0][d])
        row[f"mean_{p}_hi"] = float(every_ci["mean"][1][d])
        row[f"var_{p}"] = float(every["variance"][d])
        row[f"reference_{p}"] = float(reference_samples[:, d].mean())
        row[f"reference_var_{p}"] = float(reference_variance[d])
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
        self._agents: dict[tuple[bool, int], MetaGradientAgent] = {}

    def agent(self, scheme: str | None) -> MetaGradientAgent:
        if scheme is None:
            key = self.cfg.agent.outer_critic, 0
        else:
            key = uses_outer_critic(self.cfg, scheme), bootstrap_steps(scheme_of(self.cfg, scheme))
        if key not in self._agents:
            outer_critic, steps = key
            cfg = dataclasses.replace(self.cfg, agent=dataclasses.replace(
                self.cfg.agent, outer_critic=outer_critic))
            self._agents[key] = make_agent(
                cfg, SchemeConfig("bmg", bootstrap_steps=steps) if steps else None,
                outer_critic_network=self.network_outer_critic)
        return self._agents[key]


def run_probe(
    cfg: ExperimentConfig,
    run_dir: str | Path,
    seed: int,
    out_dir: str | Path,
    samples_per_batch: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe seed ``seed`` of the a2c run in ``run_dir`` at every ``probe.checkpoints`` interval.

    For each interval: M_ref reference samples (last, K_ref), then for each K in ``horizons`` one
    set of M keys and, per distinct estimator, M samples shared by the schemes that are it.
    Writes ``out_dir/samples.parquet`` (:data:`SAMPLE_COLUMNS`) and ``out_dir/summary.parquet``
    (:data:`SUMMARY_COLUMNS`) atomically and returns (samples, summary). Deterministic in
    (cfg, checkpoint, seed): keys from (seed, interval, K), bootstrap seeded by (seed, interval, K).
    ``samples_per_batch`` is passed to :func:`sample_meta_gradients` (None: ``probe.samples_per_batch``
    of the config, whose own None means one vmap of all M).
    """
    if samples_per_batch is None:
        samples_per_batch = cfg.probe.samples_per_batch
    seed = int(seed)
    probe_cfg = cfg.probe
    agents = _Agents(cfg)
    provenance = metrics_io.provenance(cfg, PROBE_MODULES)
    reference_weights = jnp.asarray(
        scheme_weights(SchemeConfig("last"), probe_cfg.reference_horizon), jnp.float32)
    sample_frames, summary_rows = [], []
    for interval in probe_cfg.checkpoints:
        state = load_probe_state(cfg, run_dir, seed, interval)
        env_steps = int(state.env_steps)
        t = time.perf_counter()
        keys = reference_keys(seed, interval, probe_cfg.reference_samples)
        reference = np.asarray(sample_meta_gradients(
            agents.agent(None), state, keys, reference_weights,
            samples_per_batch=samples_per_batch))
        log.info("probe seed %d interval %d: reference (K=%d, %d samples) in %.1fs",
                 seed, interval, probe_cfg.reference_horizon, probe_cfg.reference_samples,
                 time.perf_counter() - t)
        where = dict(provenance, seed=seed, interval=interval, env_steps=env_steps)
        sample_frames.append(_sample_frame(reference, dict(
            where, role="reference", horizon=probe_cfg.reference_horizon, scheme="last")))
        for horizon in cfg.horizons:
            keys = probe_keys(seed, interval, horizon, probe_cfg.num_samples)
            by_estimator: dict[tuple, np.ndarray] = {}
            t = time.perf_counter()
            for scheme in [s for s in cfg.schemes if exists_at(cfg.schemes[s], horizon)]:
                estimator = estimator_identity(cfg, scheme, horizon)
                if estimator not in by_estimator:
                    weights = scheme_weights(cfg.schemes[scheme], horizon)
                    by_estimator[estimator] = np.asarray(sample_meta_gradients(
                        agents.agent(scheme), state, keys, jnp.asarray(weights, jnp.float32),
                        samples_per_batch=samples_per_batch))
                samples = by_estimator[estimator]
                if not np.all(np.isfinite(samples)):
                    log.warning("probe seed %d interval %d K=%d %s: non-finite meta-gradients",
                                seed, interval, horizon, scheme)
                sample_frames.append(_sample_frame(samples, dict(
                    where, role="estimate", horizon=horizon, scheme=scheme)))
                rng = np.random.default_rng([seed, interval, horizon])  # same resamples per scheme
                summary_rows.append(dict(
                    where, horizon=horizon, scheme=scheme, num_samples=probe_cfg.num_samples,
                    probed_parameters=",".join(META_PARAMETERS),
                    **summarise_samples(samples, reference, probe_cfg.bootstrap, rng),
                    reference_horizon=probe_cfg.reference_horizon,
                    reference_samples=probe_cfg.reference_samples,
                    bootstrap_resamples=probe_cfg.bootstrap))
            log.info("probe seed %d interval %d K=%d: %d samples x %d estimators in %.1fs",
                     seed, interval, horizon, probe_cfg.num_samples, len(by_estimator),
                     time.perf_counter() - t)
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
    for col in ("seed", "interval", "env_steps", "horizon", "sample", "num_samples",
                "reference_horizon", "reference_samples", "bootstrap_resamples"):
        if col in frame.columns:
            frame[col] = frame[col].astype("int64")
    return frame
