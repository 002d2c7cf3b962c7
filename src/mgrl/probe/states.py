"""Which states are probed and with which keys: a seed's saved a2c checkpoints, the per-(seed,
interval) key streams, and the agent each scheme's samples are drawn with."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import chex
import jax
import jax.numpy as jnp

from mgrl import checkpoint as ckpt
from mgrl import metrics as metrics_io
from mgrl.agent import AgentState, MetaGradientAgent
from mgrl.code import TRAINING_MODULES, code_hash
from mgrl.config import ExperimentConfig
from mgrl.estimators import program_identity
from mgrl.runs import BASELINE_SCHEME, run_config, scheme_of, uses_outer_critic
from mgrl.train import make_agent, make_train

PROBE_STREAM = 0x9B0BE  # folded into the seed's key so probe keys never repeat training keys
PASS_STREAM = 0  # folded into a checkpoint's key for the keys of its forward passes
SOURCE_SCHEME, SOURCE_HORIZON = BASELINE_SCHEME, 1  # probed states come from the a2c baseline run


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


class SchemeAgents:
    """The agents that draw each scheme's samples, one per distinct (outer critic, estimator).

    Every agent has the network of the probed a2c state (with an outer critic when any scheme uses
    one); a scheme's agent takes its outer advantages from the outer critic if the scheme uses it
    (:func:`mgrl.runs.uses_outer_critic`) and runs the scheme's estimator when it is not a
    weighting (:func:`mgrl.estimators.estimator_of`). The reference (``last`` at K_ref) uses ``agent.outer_critic``.
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
        key = outer_critic, program_identity(scheme_cfg)
        if key not in self._agents:
            cfg = dataclasses.replace(self.cfg, agent=dataclasses.replace(
                self.cfg.agent, outer_critic=outer_critic))
            self._agents[key] = make_agent(cfg, None if key[1] is None else scheme_cfg,
                                           outer_critic_network=self.network_outer_critic)
        return self._agents[key]
