"""Pure, compiled training: ``make_train`` and the resumable driver that writes Parquet metrics.

``make_train(cfg, horizon, scheme)`` returns a :class:`Trainer` of two pure functions:

* ``init(seeds [S]) -> AgentState`` with a leading seed axis S (seeds are a ``vmap`` batch axis);
* ``run_interval(state) -> (state, metrics)``: one logging interval, i.e. ``meta_updates_per_interval``
  meta-steps in one ``lax.scan``, vmapped over seeds; metrics are [S] arrays.

Both are compiled once per program (settings and K: the scheme weights are a traced argument, so
every scheme at one K shares them); the driver (:func:`run_training`) only loops over intervals, writes
metrics and checkpoints. Nothing in the hot loop returns to Python.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from mgrl import checkpoint as ckpt
from mgrl import metrics as metrics_io
from mgrl.io import write_parquet_atomic
from mgrl.agent import AgentState, MetaGradientAgent
from mgrl.code import TRAINING_MODULES, code_hash
from mgrl.config import ExperimentConfig, SchemeConfig, stable_hash
from mgrl.estimators import estimator_of, program_identity, scheme_weights
from mgrl.runs import run_config, scheme_of
from mgrl.evaluation import METRICS as EVAL_METRICS, evaluation_key, make_evaluator
from mgrl.env import make_env
from mgrl.networks import make_actor_critic

log = logging.getLogger("mgrl")


class NonFiniteError(RuntimeError):
    """A loss or meta-gradient became NaN/inf; the last good checkpoint is kept."""


class TrainProgram(NamedTuple):
    """The compiled functions of one training program, shared by every scheme at its K.

    ``interval(state [S], weights [K]) -> (state, metrics [S])``: the scheme weights are a traced
    argument, so ``last``, ``uniform`` and every mixing scheme at one K run one compiled program.
    """

    init: Callable[[jax.Array], AgentState]
    interval: Callable[[AgentState, jax.Array], tuple[AgentState, dict]]
    agent: MetaGradientAgent
    meta_updates_per_interval: int
    env_steps_per_interval: int  # per seed
    executables: dict  # (tree structure, leaf shapes and dtypes) -> compiled ``interval``


@dataclasses.dataclass(frozen=True, eq=False)
class Trainer:
    """One (K, scheme): a :class:`TrainProgram` and the scheme's weights w_1..w_K.

    * ``init(seeds [S]) -> AgentState`` with a leading seed axis S;
    * ``run_interval(state) -> (state, metrics)``: one logging interval, ``meta_updates_per_interval``
      meta-steps in one ``lax.scan``, vmapped over seeds; metrics are [S] arrays. It runs the
      ahead-of-time compiled executable of the state's shapes (:meth:`executable`), compiled once
      per program and shapes and shared by every Trainer of the program.
    """

    program: TrainProgram
    weights: jax.Array  # w_1..w_K, [K]

    @property
    def init(self):
        return self.program.init

    @property
    def env_steps_per_interval(self) -> int:
        return self.program.env_steps_per_interval

    def executable(self, state: AgentState):
        """The compiled ``interval`` for ``state``'s shapes (arrays or ShapeDtypeStructs), lowered
        and compiled the first time the program meets these shapes; call it as
        ``executable(state, trainer.weights)``."""
        leaves, treedef = jax.tree.flatten(state)
        key = (treedef, tuple((tuple(x.shape), str(x.dtype)) for x in leaves))
        executables = self.program.executables
        if key not in executables:
            executables[key] = self.program.interval.lower(state, self.weights).compile()
        return executables[key]

    def run_interval(self, state: AgentState) -> tuple[AgentState, dict]:
        return self.executable(state)(state, self.weights)


def make_agent(cfg: ExperimentConfig, scheme: SchemeConfig | None = None,
               outer_critic_network: bool | None = None) -> MetaGradientAgent:
    """The agent of ``cfg`` (its ``agent.outer_critic`` says where A' comes from) for ``scheme``
    (its kind's :class:`mgrl.estimators.Estimator`; None: a weighting). ``outer_critic_network``: whether the network has an
    outer critic (default: ``agent.outer_critic``; probes of a state that holds one pass True)."""
    dtype = jnp.float64 if cfg.train.dtype == "float64" else jnp.float32
    if outer_critic_network is None:
        outer_critic_network = cfg.agent.outer_critic
    env = make_env(cfg.env)
    network = make_actor_critic(cfg.network, env.num_actions, dtype=dtype,
                                outer_critic=outer_critic_network,
                                observation_ndim=len(env.observation_shape))
    return MetaGradientAgent(cfg.env, cfg.agent, cfg.meta, network, estimator=estimator_of(scheme))


def program_settings(cfg: ExperimentConfig) -> str:
    """Hash of the settings a training program is built from (environment, network, agent, meta
    and ``train.dtype`` / ``train.inner_updates_per_interval``); seeds, schemes, interval counts,
    checkpointing and probe settings do not change the program."""
    plain = cfg.to_dict()
    settings = {section: plain[section] for section in ("env", "network", "agent", "meta")}
    settings["train"] = {k: plain["train"][k] for k in ("dtype", "inner_updates_per_interval")}
    return stable_hash(settings)


_PROGRAMS: dict[tuple[str, int, tuple | None], TrainProgram] = {}  # (settings, K, program_identity)


def make_train(cfg: ExperimentConfig, horizon: int, scheme: str, *, reuse: bool = True) -> Trainer:
    """The Trainer of one (horizon K, scheme): the program of (settings, K) and the weights.

    A process builds each program once: every scheme at the same K, and later calls with other
    seeds, names or interval counts, share its jitted functions and compiled executables (tests,
    probes and resumed runs in one process trace, lower and compile it once). ``reuse=False``
    builds a fresh program (tests that count compilations).
    """
    scheme_cfg = scheme_of(cfg, scheme)
    cfg = run_config(cfg, horizon, scheme)
    weights = jnp.asarray(scheme_weights(scheme_cfg, horizon), jnp.float32)
    key = (program_settings(cfg), int(horizon), program_identity(scheme_cfg))
    program = _PROGRAMS.get(key) if reuse else None
    if program is None:
        program = _build_program(cfg, int(horizon), scheme_cfg)
        if reuse:
            _PROGRAMS[key] = program
    return Trainer(program, weights)


def _build_program(cfg: ExperimentConfig, horizon: int, scheme: SchemeConfig) -> TrainProgram:
    agent = make_agent(cfg, scheme)
    window = agent.updates_per_window(horizon)  # K, or K + L for an inner-target bmg
    n_meta = math.ceil(cfg.train.inner_updates_per_interval / window)

    def init_one(seed):
        return agent.init(jax.random.PRNGKey(seed))

    def meta_step(state: AgentState, weights: jax.Array):
        gamma_used = agent.hyper_parameters(state.eta)[0]  # the window's inner updates use it
        state, metrics = agent.meta_step(state, weights)
        return state, {**metrics, "meta/gamma_mean": gamma_used}

    def interval_one(state: AgentState, weights: jax.Array):
        state, per_step = jax.lax.scan(
            lambda s, _: meta_step(s, weights), state, None, length=n_meta
        )
        return state, summarise_interval(agent, state, per_step)

    return TrainProgram(
        init=jax.jit(jax.vmap(init_one)),
        interval=jax.jit(jax.vmap(interval_one, in_axes=(0, None)), donate_argnums=0),
        agent=agent,
        meta_updates_per_interval=n_meta,
        env_steps_per_interval=(n_meta * window * agent.rollouts_per_update()
                                * cfg.env.rollout_length * cfg.env.num_envs),
        executables={},
    )


def summarise_interval(agent: MetaGradientAgent, state: AgentState, per_step: dict) -> dict:
    """Reduce per-meta-step metrics [n_meta] to one value per interval."""
    episodes = jnp.sum(per_step.pop("episodes"))
    return_sum = jnp.sum(per_step.pop("return_sum"))
    length_sum = jnp.sum(per_step.pop("length_sum"))
    out = {k: jnp.mean(v) for k, v in per_step.items()}
    out["train/episodes"] = episodes
    out["train/episode_return"] = jnp.where(episodes > 0, return_sum / jnp.maximum(episodes, 1), jnp.nan)
    out["train/episode_length"] = jnp.where(episodes > 0, length_sum / jnp.maximum(episodes, 1), jnp.nan)
    out["meta/gamma"], out["meta/lambda"] = agent.hyper_parameters(state.eta)
    out["meta_updates"] = state.meta_updates
    out["env_steps"] = state.env_steps
    return out


def _all_finite(m: dict) -> np.ndarray:
    keys = ["loss/meta", "loss/inner", "meta/gamma", "meta/lambda"]
    ok = np.ones_like(np.asarray(m["loss/meta"]), dtype=bool)
    for k in keys:
        ok &= np.isfinite(np.asarray(m[k]))
    for k in ("meta/grad_gamma", "meta/grad_lambda"):
        v = np.asarray(m[k])
        ok &= np.isfinite(v) | np.isnan(v) & np.isnan(np.asarray(m["meta/grad_norm"]))
    return ok


def _evaluator(cfg: ExperimentConfig, agent: MetaGradientAgent):
    """``evaluate(state, seeds, interval) -> {metric: [S]}``: each seed's evaluation
    (:mod:`mgrl.evaluation`, its own keys) with ``train.eval_episodes`` episodes, NaN with none."""
    if cfg.train.eval_episodes == 0:
        return lambda state, seeds, interval: {k: np.full(len(seeds), np.nan) for k in EVAL_METRICS}
    run = jax.jit(jax.vmap(make_evaluator(agent.env, agent.network, cfg.train.eval_episodes,
                                          cfg.train.eval_max_steps)))

    def evaluate(state, seeds, interval):
        keys = jnp.stack([evaluation_key(seed, interval) for seed in seeds])
        return jax.device_get(run(state.params, keys))

    return evaluate


def checkpoint_dir(out_dir: str | Path, config_hash: str, training_code_hash: str | None = None) -> Path:
    """``out_dir/checkpoints/<config hash>-<code hash>``: a run resumes only from checkpoints of
    the same settings *and* the same training code (default: the code as it is now)."""
    if training_code_hash is None:
        training_code_hash = code_hash(TRAINING_MODULES)
    return Path(out_dir) / "checkpoints" / f"{config_hash}-{training_code_hash}"


def run_training(
    cfg: ExperimentConfig,
    horizon: int,
    scheme: str,
    seeds: Sequence[int],
    out_dir: str | Path,
    progress: bool | None = None,
    stop_after: int | None = None,
) -> pd.DataFrame:
    """Train seeds ``seeds`` of (horizon, scheme), resuming from ``out_dir``'s latest checkpoint.

    Writes ``out_dir/metrics.parquet`` atomically when all ``cfg.train.num_intervals`` intervals are
    done, and checkpoints every ``cfg.train.checkpoint_every`` intervals under
    ``out_dir/checkpoints/<config hash>-<code hash>/``.
    ``stop_after`` (tests) returns early after that many intervals of this call, as a kill would.
    """
    out_dir = Path(out_dir)
    seeds = [int(s) for s in seeds]
    cfg = run_config(cfg, horizon, scheme, seeds)
    trainer = make_train(cfg, horizon, scheme)
    identity = metrics_io.run_identity(cfg, horizon, scheme, seeds)
    # Checkpoints are namespaced by the run's config and code hashes: a changed config or changed
    # training code starts afresh and never resumes from (or overwrites) another's states.
    ckpt_dir = checkpoint_dir(out_dir, identity["config_hash"], identity["code_hash"])

    for stale in ckpt.remove_stale_temporaries(ckpt_dir):  # a job killed while writing one
        log.info("removed the half-written checkpoint %s", stale)
    t0 = time.perf_counter()
    template = jax.eval_shape(trainer.init, jnp.asarray(seeds))
    resumed = ckpt.load_latest(ckpt_dir, template, identity)
    if resumed is None:
        start, state, rows = 0, trainer.init(jnp.asarray(seeds)), []
    else:
        start, state, previous = resumed
        rows = previous.to_dict("records")
        log.info("resuming %s from checkpoint at interval %d (%s)", identity["run"], start, ckpt_dir)
    compiled = trainer.executable(state)
    compile_s = time.perf_counter() - t0
    log.info("%s: compiled in %.1fs; %d env steps per interval per seed",
             identity["run"], compile_s, trainer.env_steps_per_interval)

    total = cfg.train.num_intervals
    evaluate = _evaluator(cfg, trainer.program.agent)
    bar = _progress(identity["run"], start, total, progress)
    done_here = 0
    for interval in range(start + 1, total + 1):
        t = time.perf_counter()
        state, m = compiled(state, trainer.weights)
        m = jax.device_get(m)
        seconds = time.perf_counter() - t
        m.update(evaluate(state, seeds, interval))
        finite = _all_finite(m)
        if not finite.all():
            bad = [s for s, ok in zip(seeds, finite) if not ok]
            raise NonFiniteError(
                f"non-finite loss or meta-gradient in run horizon={horizon} scheme={scheme} "
                f"seed(s) {bad} at interval {interval} (env step {int(np.max(m['env_steps']))}, "
                f"meta-update {int(np.max(m['meta_updates']))}); the last good checkpoint in "
                f"{ckpt_dir} is kept"
            )
        for i, seed in enumerate(seeds):
            row = {k: np.asarray(v)[i].item() for k, v in m.items()}
            agent = trainer.program.agent
            row.update(seed=seed, interval=interval, inner_updates=int(row["meta_updates"])
                       * agent.updates_per_window(horizon))
            row["extra_env_steps"] = agent.extra_env_steps(int(row["meta_updates"]), horizon)
            row["perf/interval_seconds"] = seconds
            row["perf/env_steps_per_s"] = trainer.env_steps_per_interval * len(seeds) / seconds
            row["perf/compile_seconds"] = compile_s
            rows.append(row)
        _report(bar, interval, total, rows[-1], identity["run"])
        if (interval % cfg.train.checkpoint_every == 0 or interval == total
                or interval in cfg.probe.checkpoints):
            ckpt.save(ckpt_dir, interval, state, pd.DataFrame(rows), identity,
                      keep=frozenset(cfg.probe.checkpoints))
        done_here += 1
        if stop_after is not None and done_here >= stop_after and interval < total:
            return pd.DataFrame(rows)
    if bar is not None:
        bar.close()
    frame = metrics_io.to_frame(rows, identity)
    write_parquet_atomic(frame, out_dir / "metrics.parquet")
    return frame


def _progress(name: str, start: int, total: int, progress: bool | None):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc=name, unit="interval")


def _report(bar, interval: int, total: int, row: dict, name: str) -> None:
    msg = (f"ret={row['train/episode_return']:.3f} gamma={row['meta/gamma']:.4f} "
           f"lambda={row['meta/lambda']:.4f} sps={row['perf/env_steps_per_s']:.0f}")
    if bar is not None:
        bar.set_postfix_str(msg)
        bar.update(1)
    else:
        log.info("%s interval %d/%d env_steps=%d %s", name, interval, total, row["env_steps"], msg)
