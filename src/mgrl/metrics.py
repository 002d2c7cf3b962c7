"""Metric columns and provenance of training runs (atomic Parquet output: :mod:`mgrl.io`).

One row per (seed, logging interval). ``COLUMNS`` documents every column; the table in
docs/outputs.md is generated from the same text (``python -m mgrl columns``).
"""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Sequence

import pandas as pd

from mgrl.code import TRAINING_MODULES, code_hash
from mgrl.config import ExperimentConfig

COLUMNS: dict[str, str] = {
    "experiment": "experiment name (config `name`)",
    "horizon": "K, inner updates per meta-update (1 for the a2c baseline)",
    "scheme": "outer-loss weighting: a scheme name from the config, or a2c (no meta-learning)",
    "seed": "training seed",
    "interval": "logging interval, 1-based; one compiled call each",
    "meta_updates": "meta-updates done so far (cumulative)",
    "inner_updates": "inner (A2C) parameter updates so far = meta_updates * K (K + L for bmg with "
                     "bootstrap_target inner)",
    "env_steps": "environment steps so far per seed, including the first rollout",
    "extra_env_steps": "environment steps so far that only feed the meta-gradient (not in "
                       "env_steps): the meta.samples - 1 extra windows per meta-update and the "
                       "rollouts of every sample's outer-target bmg look-ahead",
    "train/episode_return": "mean return of episodes completed during the interval (NaN if none)",
    "train/episode_length": "mean length of episodes completed during the interval (NaN if none)",
    "train/episodes": "episodes completed during the interval (all B environments)",
    "train/reward_per_step": "mean reward per environment step during the interval (fruits per step; "
                             "defined even when no episode ends)",
    "meta/gamma": "discount gamma = low + (high - low) sigmoid(eta_gamma) (agent.gamma_bounds) at "
                  "the end of the interval",
    "meta/gamma_mean": "gamma used by the interval's inner updates, mean over its meta-updates "
                       "(the authors' logged gamma: their train/mean over each evaluation epoch)",
    "meta/lambda": "GAE lambda = sigmoid(eta_lambda) at the end of the interval",
    "meta/grad_gamma": "d meta-loss / d eta_gamma (raw, before masking and clipping; the mean of the "
                       "meta.samples samples), interval mean; "
                       "NaN for a2c",
    "meta/grad_lambda": "d meta-loss / d eta_lambda (raw), interval mean; NaN for a2c",
    "meta/grad_norm": "global norm of the applied (learned-only) meta-gradient before clipping, "
                      "interval mean; NaN for a2c",
    "meta/step_gamma": "absolute applied change of eta_gamma per meta-update (the meta-optimiser's "
                       "step on gamma's logit), interval mean; NaN for a2c",
    "loss/meta": "meta-loss sum_k w_k L'(theta_k) (bmg: KL(pi_target || pi_theta_K)), interval mean (a2c: L'(theta_0) of each update, the same losses one update later, from the update's own network pass)",
    "meta/outer_advantage_mean": "mean outer advantage A' over the window's validation rollouts "
                                 "(every step of R_1..R_K; a2c: R_0..R_{K-1}), interval mean: the "
                                 "outer-value-function paper's bias measure, ~0 for an unbiased A'",
    "loss/outer_last": "outer loss L'(theta_K) at the window's last step, interval mean (a2c: L'(theta_0))",
    "loss/inner": "inner A2C loss (pg + value - entropy terms, weighted), interval mean",
    "loss/inner_pg": "inner policy-gradient term, interval mean",
    "loss/inner_value": "inner value (TD) term, interval mean",
    "loss/outer_value": "outer critic's TD(lambda') term with gamma', lambda' (agent.outer_critic), "
                        "interval mean; NaN without an outer critic",
    "policy/entropy": "mean policy entropy (nats) on the inner rollouts",
    "eval/return_greedy": "mean return of train.eval_episodes fresh episodes after the interval, "
                          "acting greedily (argmax), on keys apart from training's; NaN when "
                          "train.eval_episodes is 0",
    "eval/return_sampled": "the same episodes' resets, acting by sampling the policy; NaN when "
                           "train.eval_episodes is 0",
    "perf/env_steps_per_s": "environment steps per second of wall time in this interval, all seeds "
                            "of the job (excludes compilation)",
    "perf/interval_seconds": "wall time of the interval's compiled call",
    "perf/compile_seconds": "compile time of the job (same on every row)",
    "git_sha": "commit of the code that produced the row ('unknown' outside git)",
    "config_hash": "sha256 prefix of the run's own settings (mgrl.runs.run_config)",
    "code_hash": "sha256 prefix of the source of the modules that computed the row (mgrl.code; "
                 "training: env, networks, losses, estimators, agent, train; probes: those, probe and stats)",
    "jax_version": "jax version",
    "jumanji_version": "jumanji version",
    "haiku_version": "dm-haiku version",
    "optax_version": "optax version",
}

TIMING_COLUMNS = tuple(c for c in COLUMNS if c.startswith("perf/"))


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        sha = out.stdout.strip()
        return sha if out.returncode == 0 and sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(cfg: ExperimentConfig, modules: tuple[str, ...] = TRAINING_MODULES) -> dict[str, str]:
    """Columns that say what produced a row: code (git sha, hash of ``modules``), config, versions."""
    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {
        "experiment": cfg.name,
        "git_sha": git_sha(),
        "config_hash": cfg.hash(),
        "code_hash": code_hash(modules),
        "jax_version": version("jax"),
        "jumanji_version": version("jumanji"),
        "haiku_version": version("dm-haiku"),
        "optax_version": version("optax"),
    }


def run_identity(cfg: ExperimentConfig, horizon: int, scheme: str, seeds: Sequence[int]) -> dict:
    """What a run is: checked against checkpoints before resuming, stamped on every row."""
    return dict(provenance(cfg), run=f"K{horizon}-{scheme}", horizon=int(horizon), scheme=scheme,
                seeds=[int(s) for s in seeds])


def to_frame(rows: list[dict], identity: dict) -> pd.DataFrame:
    """Rows -> DataFrame with every documented column, in documented order."""
    frame = pd.DataFrame(rows)
    for key in ("experiment", "horizon", "scheme", "git_sha", "config_hash", "code_hash", "jax_version",
                "jumanji_version", "haiku_version", "optax_version"):
        frame[key] = identity[key]
    for col in ("seed", "interval", "meta_updates", "inner_updates", "env_steps", "extra_env_steps",
                "horizon"):
        frame[col] = frame[col].astype("int64")
    frame["train/episodes"] = frame["train/episodes"].astype("float64")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"metrics lack documented columns {missing}")
    return frame[list(COLUMNS)]
