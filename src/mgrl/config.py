"""Typed, frozen experiment settings and their strict loading from YAML.

The dataclasses below are the one description of the config: each field carries its default, a
one-line description and its value constraints (``setting``); the JSON schema of the Snakemake
workflow and ``config/README.md`` are generated from them (:mod:`mgrl.schema`). Loading rejects an
unknown key or an invalid value with a :class:`ConfigError` naming the dotted key, before any work
starts. What a scheme computes lives in :mod:`mgrl.estimators` (which owns :class:`SchemeConfig`).

Layout of a config file (``config.yaml`` at the repository root is a commented example)::

    name: default            # experiment name, used in output paths
    seeds: [0, 1, 2]
    horizons: [1, 2, 4]      # K, inner updates per meta-update
    schemes:                 # estimators (mgrl.estimators)
      last: {kind: last}
      uniform: {kind: uniform}
    env: {...}; network: {...}; agent: {...}; meta: {...}; train: {...}; probe: {...}
    sensitivity: {...}; claims: {...}; replication: {...}    # analysis only: in no job's config
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

from mgrl.estimators import SchemeConfig, validate_scheme
from mgrl.claim_support import CLAIMS, claim_support
from mgrl.runs import validate_scheme_name
from mgrl.settings import META_OPTIMIZERS, ConfigError, setting

META_PARAMETERS = ("gamma", "lambda")
OPTIMIZERS = ("rmsprop", "adam", "sgd")
SAMPLE_WINDOWS = ("whole", "shared_r0")
ENV_NAMES = ("snake", "discounting_chain")
"""``snake``: Jumanji's Snake; ``discounting_chain``: bsuite's Discounting Chain from gymnax
(:mod:`mgrl.env`)."""
ANALYSIS_SECTIONS = ("sensitivity", "claims", "replication", "reproduction")
"""Top-level sections that change which runs are compared and how, never what a training or probe
job computes: they live in :class:`AnalysisConfig`, in no job's config (nor its hash)."""


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """The environment, built from explicit settings (never from a registered name)."""

    name: str = setting("snake", "snake: Jumanji's Snake; discounting_chain: bsuite's Discounting "
                        "Chain from gymnax (a vector observation: set network.conv_channels: [])",
                        enum=list(ENV_NAMES))
    num_rows: int = setting(6, "snake only: board rows", minimum=4)
    num_cols: int = setting(6, "snake only: board columns", minimum=4)
    time_limit: int = setting(500, "snake only: steps before an episode is truncated", minimum=1)
    num_envs: int = setting(64, "B, environments stepped in parallel", minimum=1)
    rollout_length: int = setting(5, "T, environment steps per inner update", minimum=1)
    mapping_seed: int = setting(3, "discounting_chain only: the chain (first action) whose reward is "
                                "1.1 instead of 1 (gymnax's mapping_seed)", minimum=0, maximum=4)


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Separate actor and critic, each a conv torso followed by an MLP."""

    conv_channels: tuple[int, ...] = setting((32, 32), "channels of each convolution (snake; empty: "
                                             "no convolution, the observation is flattened)",
                                             items={"minimum": 1})
    kernel_size: int = setting(2, "square kernel size of the convolutions (at most the board size)",
                               minimum=1)
    policy_hidden: tuple[int, ...] = setting((64, 64), "policy MLP layer sizes", items={"minimum": 1})
    value_hidden: tuple[int, ...] = setting((128, 128), "value MLP layer sizes", items={"minimum": 1})
    bias: bool = setting(True, "biases in the MLP heads' layers; false with no hidden layer and a one-hot "
                         "observation makes each head a table (no shared bias whose step is a "
                         "row's times the number of states)")
    conv_impl: str = setting("matmul", "matmul: 2x2 convolutions as shifted slices and one matmul "
                             "(fast inside lax.scan on CPU, same parameters); xla: hk.Conv2D",
                             enum=["matmul", "xla"])
    conv_strides: tuple[int, ...] = setting((), "stride of each convolution (one per conv_channels "
                                            "entry); empty: 1 for every convolution",
                                            items={"minimum": 1})
    conv_padding: str = setting("VALID", "VALID (no padding) or SAME (zero padding that keeps "
                                "ceil(size / stride) rows and columns, Haiku's default)",
                                enum=["VALID", "SAME"])
    mask_illegal: bool = setting(True, "illegal moves (into a wall or the body) get a -1e9 logit, "
                                 "so the snake dies only when trapped; false: the policy samples "
                                 "all 4 moves and an illegal one ends the episode, as Jumanji's "
                                 "step does (the authors' task, [2022])")


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Inner A2C learner: loss = pg_coef*PG + value_coef*TD - entropy_coef*entropy."""

    optimizer: str = setting("rmsprop", "inner optimiser", enum=list(OPTIMIZERS))
    rmsprop_decay: float = setting(0.99, "rmsprop only: decay of the second-moment average",
                                   exclusiveMinimum=0, exclusiveMaximum=1)
    rmsprop_eps: float = setting(1e-5, "rmsprop only: eps added inside the square root",
                                 exclusiveMinimum=0)
    learning_rate: float = setting(5e-4, "inner learning rate", exclusiveMinimum=0)
    pg_coef: float = setting(1.0, "weight of the policy-gradient term", minimum=0)
    value_coef: float = setting(0.5, "weight of the critic's TD(lambda) term", minimum=0)
    entropy_coef: float = setting(0.01, "weight of the entropy bonus", minimum=0)
    gamma_init: float = setting(0.8, "initial discount gamma (fixed for a2c)", exclusiveMinimum=0,
                                exclusiveMaximum=1)
    gamma_bounds: tuple[float, ...] = setting(
        (0.0, 1.0), "[low, high]: gamma = low + (high - low) sigmoid(eta_gamma); gamma_init and the "
        "sensitivity gammas must lie strictly inside", minItems=2, items={"minimum": 0, "maximum": 1})
    lambda_init: float = setting(0.95, "initial GAE lambda (fixed unless meta.learn has lambda)",
                                 exclusiveMinimum=0, exclusiveMaximum=1)
    outer_gamma: float = setting(1.0, "gamma' of the outer (validation) policy-gradient loss",
                                 minimum=0, maximum=1)
    outer_lambda: float = setting(1.0, "lambda' of the outer loss", minimum=0, maximum=1)
    critic: str = setting("learned", "learned: the network's critic heads; exact: the environment's "
                          "exact value function at gamma (critic) and gamma' (outer critic), as "
                          "[2022] on the Discounting Chain (discounting_chain only)",
                          enum=["learned", "exact"])
    outer_critic: bool = setting(False, "a second critic trained with gamma', lambda' gives the "
                                 "outer advantages")
    outer_value_coef: float | None = setting(None, "weight of the outer critic's TD term in the "
                                             "inner loss (needed when it is on)", exclusiveMinimum=0)


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """Outer learner of the meta-parameters eta (logits of gamma and lambda)."""

    learn: tuple[str, ...] = setting(("gamma",), "meta-parameters that receive meta-gradient updates",
                                     items={"enum": list(META_PARAMETERS)})
    learning_rate: float = setting(3e-3, "learning rate of the meta-optimiser", exclusiveMinimum=0)
    optimizer: str = setting("adam", "meta-optimiser after the clip: adam (divides out the "
                             "gradient's scale: its expected step grows with the SNR) or sgd (step "
                             "= learning_rate x clipped gradient: its expected step does not change "
                             "with M)", enum=list(META_OPTIMIZERS))
    clip_norm: float = setting(0.1, "global-norm clip of the meta-gradient before the "
                               "meta-optimiser", exclusiveMinimum=0)
    adam_eps_root: float = setting(0.0, "adam only: eps added inside the square root of the "
                                   "meta-optimiser's second moment ([2022]: 1e-8)", minimum=0)
    remat: bool = setting(False, "jax.checkpoint each inner step: reverse-mode memory ~O(1) in K, "
                          "~1.3x compute")
    gradient: str = setting("reverse", "how the meta-gradient is computed: reverse (backpropagation "
                            "through the K inner updates) or forward (forward-mode, D tangents: "
                            "memory independent of K); the same meta-gradients",
                            enum=["reverse", "forward"])
    samples: int = setting(1, "M, meta-gradient samples averaged per meta-update: sample 0's window "
                           "is the training trajectory, M - 1 more windows from the same state "
                           "(keys of their own) feed the meta-gradient only", minimum=1)
    validation: str = setting("reuse", "the data of the outer loss l_k: reuse = R_k, the rollout "
                              "theta_k collects for its own update (every step used once); fresh "
                              "= a new rollout of theta_k collected after the update that made "
                              "it, before R_k, its steps counted in env_steps (2 rollouts per "
                              "update, [2022]); weighting kinds only (a bmg scheme's target has rollouts of its own: "
                              "schemes.<name>.bootstrap_rollout)", enum=["reuse", "fresh"])
    sample_window: str = setting("whole", "what each of the M - 1 extra samples draws: whole = its "
                                 "own R_0 too (collected by theta_0 from the current environments), "
                                 "so the M samples are independent draws of the window and the "
                                 "variance falls 1/M; shared_r0 = it reuses the stored R_0 (the "
                                 "variance given R_0 falls 1/M)", enum=list(SAMPLE_WINDOWS))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Length, logging and checkpointing of a training run."""

    num_intervals: int = setting(10, "logging intervals per run (one compiled call each)", minimum=1)
    inner_updates_per_interval: int = setting(8, "inner updates per interval, rounded up to a "
                                              "multiple of the window (K, or K + L for bmg)", minimum=1)
    checkpoint_every: int = setting(1, "intervals between checkpoints", minimum=1)
    dtype: str = setting("float32", "float dtype of parameters and losses (float64: gradient checks)",
                         enum=["float32", "float64"])
    eval_episodes: int = setting(0, "fresh episodes evaluated after every interval, greedy and "
                                 "sampled (columns eval/return_greedy, eval/return_sampled; NaN "
                                 "with 0), on a key stream of their own: training is unchanged",
                                 minimum=0)
    eval_max_steps: int = setting(500, "steps an evaluation episode may last (Snake's time limit "
                                  "ends it by then at the default)", minimum=1)


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """Meta-gradient estimator probes (variance, bias, SNR) on saved a2c training states."""

    num_samples: int = setting(16, "M, meta-gradient samples per (checkpoint, K, scheme); the first "
                               "min(M, M_ref) share their keys with the reference's", minimum=2)
    reference_horizon: int = setting(8, "K_ref of the reference estimator (last scheme), >= every K",
                                     minimum=1)
    reference_samples: int = setting(32, "M_ref, samples of the reference: forward passes of K_ref "
                                     "steps, which also give every (K, scheme) sample of their key",
                                     minimum=1)
    reference_advantages: str = setting(
        "critic", "A' of the reference's outer loss L'(theta_Kref): critic = the experiment's (the "
        "critic's or the outer critic's GAE); returns = Monte Carlo returns at gamma' to the "
        "episode's end (continued by theta_Kref for up to probe.return_steps steps) minus the "
        "critic's value, which no critic biases", enum=["critic", "returns"])
    return_steps: int = setting(200, "returns reference only: steps theta_Kref plays on after "
                                "R_Kref to finish its episodes (longer ones are truncated)",
                                minimum=1)
    checkpoints: tuple[int, ...] = setting((1,), "training intervals whose a2c states are probed",
                                           items={"minimum": 1})
    bootstrap: int = setting(1000, "percentile-bootstrap resamples per CI", minimum=10)
    samples_per_batch: int | None = setting(None, "null: vmap all M samples at once (GPU); b: "
                                            "lax.map over chunks of b (faster on CPU)", minimum=1)


def stable_hash(plain: Mapping[str, Any]) -> str:
    """Short (12 hex digits) hash of plain JSON-able settings, independent of key order."""
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: its runs are seeds x horizons x schemes (plus the a2c baseline)."""

    name: str = setting("default", "experiment name, used in output paths")
    seeds: tuple[int, ...] = setting((0,), "training seeds", minItems=1, uniqueItems=True,
                                     items={"minimum": 0})
    horizons: tuple[int, ...] = setting((1,), "K values, inner updates per meta-update", minItems=1,
                                        uniqueItems=True, items={"minimum": 1})
    schemes: Mapping[str, SchemeConfig] = setting(
        {"last": SchemeConfig("last")}, "named estimators (a2c and a2c_gamma<g> are reserved); a "
        "name without a body is the kind of that name")
    seeds_per_job: int = setting(1, "seeds vmapped in one training job", minimum=1)
    env: EnvConfig = setting(EnvConfig(), EnvConfig.__doc__)
    network: NetworkConfig = setting(NetworkConfig(), NetworkConfig.__doc__)
    agent: AgentConfig = setting(AgentConfig(), AgentConfig.__doc__)
    meta: MetaConfig = setting(MetaConfig(), MetaConfig.__doc__)
    train: TrainConfig = setting(TrainConfig(), TrainConfig.__doc__)
    probe: ProbeConfig = setting(ProbeConfig(), ProbeConfig.__doc__)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def hash(self) -> str:
        """Short stable hash of the whole config (a provenance column)."""
        return stable_hash(self.to_dict())


@dataclasses.dataclass(frozen=True)
class SensitivityConfig:
    """Analysis only: the gamma-sensitivity sweep (the a2c baseline at fixed gammas)."""

    gammas: tuple[float, ...] = setting((), "fixed gammas at which the a2c baseline is trained (runs "
                                        "a2c_gamma<g>); empty turns the sweep off", uniqueItems=True,
                                        items={"exclusiveMinimum": 0, "exclusiveMaximum": 1})


@dataclasses.dataclass(frozen=True)
class ClaimsConfig:
    """Analysis only: which claims the experiment tests and the settings of their verdicts."""

    tested: tuple[str, ...] | None = setting(
        None, "the claims this experiment tests (mgrl.claim_support.CLAIMS); null: every claim its "
        "horizons, schemes and sensitivity sweep support. A named claim they cannot support is an "
        "error", uniqueItems=True, items={"enum": list(CLAIMS)})
    margin_fraction: float = setting(
        0.25, "delta of the return claims (C4, C5, C5', E2) as a fraction of the experiment's "
        "gamma effect: the range (max - min over gamma) of the fixed-gamma a2c runs' mean final "
        "returns (the a2c baseline and sensitivity.gammas) of the primary seeds; both seed sets "
        "are decided with it", exclusiveMinimum=0, maximum=1)
    step_cosine_effect: float = setting(0.2, "C1's power target: the rise of the step cosine "
                                        "(K_max vs K_min) a CI should be able to resolve",
                                        exclusiveMinimum=0, maximum=2)


@dataclasses.dataclass(frozen=True)
class ReplicationConfig:
    """Analysis only: the replicate seed set of the Snakemake target replicate (the same
    experiment on other seeds, its claims beside the primary ones)."""

    seed_offset: int = setting(1000, "the replicate seed set is every seed plus this offset: "
                               "disjoint from `seeds`", exclusiveMinimum=0)


@dataclasses.dataclass(frozen=True)
class ReproductionConfig:
    """Analysis only: the comparison with the authors' published per-run curves, update for update
    (mgrl.reproduction; rule `reproduction`)."""

    authors_runs: str | None = setting(
        None, "the authors' per-run points (`python -m mgrl authors-runs` extract, CSV or .csv.gz, "
        "path relative to the checkout); null: no comparison")
    updates: tuple[int, ...] = setting(
        (), "inner-update counts at which ours and theirs are compared: each a logging point of "
        "both (a multiple of train.inner_updates_per_interval and of the authors' 146)",
        uniqueItems=True, items={"exclusiveMinimum": 0})
    gamma_margin_fraction: float = setting(
        0.5, "margin m of `reproduced` for gamma: this fraction x the authors' outer-critic effect "
        "on gamma at that update (|mean MG + oc - mean MG|, the effect their paper reports)",
        exclusiveMinimum=0, maximum=1)
    return_margin_fraction: float = setting(
        0.25, "margin m of `reproduced` for the return: this fraction x gamma's effect on the "
        "greedy return at that update (max - min over the fixed-gamma a2c runs of the primary "
        "seeds), as claims.margin_fraction", exclusiveMinimum=0, maximum=1)


def check_reproduction(cfg: "ExperimentConfig", reproduction: ReproductionConfig,
                       root: str | Path = ".") -> None:
    """Raise a :class:`ConfigError` naming the ``reproduction`` key at fault: a missing extract, or
    an update count that is not one of this experiment's logging points."""
    if reproduction.authors_runs is None:
        return
    path = Path(root) / reproduction.authors_runs
    if not path.is_file():
        raise ConfigError("reproduction.authors_runs", f"no file '{path}'")
    if not reproduction.updates:
        raise ConfigError("reproduction.updates", "name at least one inner-update count to compare")
    per_interval = cfg.train.inner_updates_per_interval
    last = per_interval * cfg.train.num_intervals
    theirs = _logged_iterations(path)
    for u in reproduction.updates:
        if u % per_interval or u > last:
            raise ConfigError("reproduction.updates",
                              f"{u} is not a logging point of this experiment (multiples of "
                              f"train.inner_updates_per_interval {per_interval} up to {last})")
        if u not in theirs:
            raise ConfigError("reproduction.updates",
                              f"{u} is not a logged point of every authors' run and metric in "
                              f"'{path}' (theirs: multiples of 146 up to {max(theirs)})")


def _logged_iterations(path: Path) -> set[int]:
    """The iterations at which every (agent, metric, run) of an authors-runs extract has a point."""
    import csv
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as handle:
        points: dict[tuple, set[int]] = {}
        for row in csv.DictReader(handle):
            points.setdefault((row["agent"], row["metric"], row["run"]), set()).add(
                int(float(row["iteration"])))
    return set.intersection(*points.values()) if points else set()


def replicate_seeds(seeds: tuple[int, ...], replication: ReplicationConfig) -> tuple[int, ...]:
    """The replicate seed set: every seed plus ``replication.seed_offset``, in the same order."""
    return tuple(int(s) + replication.seed_offset for s in seeds)


def check_replication(seeds: tuple[int, ...], replication: ReplicationConfig) -> None:
    """Raise a :class:`ConfigError` naming ``replication.seed_offset`` when the replicate seed set
    shares a seed with ``seeds`` (its runs would not be independent of the primary ones)."""
    shared = sorted(set(seeds) & set(replicate_seeds(seeds, replication)))
    if shared:
        raise ConfigError("replication.seed_offset",
                          f"the replicate seeds (seeds + {replication.seed_offset}) must be disjoint "
                          f"from seeds, but share {shared}")


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """The analysis-only sections of a config file (:data:`ANALYSIS_SECTIONS`)."""

    sensitivity: SensitivityConfig = setting(SensitivityConfig(), SensitivityConfig.__doc__)
    claims: ClaimsConfig = setting(ClaimsConfig(), ClaimsConfig.__doc__)
    replication: ReplicationConfig = setting(ReplicationConfig(), ReplicationConfig.__doc__)
    reproduction: ReproductionConfig = setting(ReproductionConfig(), ReproductionConfig.__doc__)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


# --------------------------------------------------------------------------------------------------
# Loading and validation.


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in the YAML file at ``path`` (a ConfigError names a missing or broken file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("<file>", f"config file '{path}' does not exist")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError("<file>", f"'{path}' is not valid YAML: {err}") from err


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Read YAML at ``path`` into an :class:`ExperimentConfig`, strictly validated."""
    raw = read_yaml(path)
    if overrides:
        raw = _deep_merge(raw, overrides)
    return config_from_dict(raw)


def config_from_dict(raw: Mapping[str, Any]) -> ExperimentConfig:
    """Build and validate a config from plain data (as parsed from YAML); the analysis sections
    are validated too (:func:`analysis_config_from_dict`) but not part of the result. A config
    with a ``replication`` section must give replicate seeds disjoint from ``seeds``
    (:func:`check_replication`); a job's config has no analysis section (its seeds are one seed set
    or the other), so the Snakefile checks the experiment's seed sets itself."""
    if not isinstance(raw, Mapping):
        raise ConfigError("<root>", "the config must be a mapping")
    raw = dict(raw)
    sections = {k: raw.pop(k) for k in ANALYSIS_SECTIONS if k in raw}
    analysis = analysis_config_from_dict(sections)
    schemes_raw = raw.pop("schemes", None)
    cfg = _build(ExperimentConfig, raw, prefix="")
    if schemes_raw is not None:
        if not isinstance(schemes_raw, Mapping) or not schemes_raw:
            raise ConfigError("schemes", "must be a non-empty mapping of name -> {kind: ...}")
        schemes = {}
        for name, body in schemes_raw.items():
            if body is None:
                body = {"kind": str(name)}
            if not isinstance(body, Mapping):
                raise ConfigError(f"schemes.{name}", "must be a mapping such as {kind: uniform}")
            schemes[str(name)] = _build(SchemeConfig, body, prefix=f"schemes.{name}.")
        cfg = dataclasses.replace(cfg, schemes=schemes)
    validate(cfg)
    low, high = cfg.agent.gamma_bounds
    outside = [g for g in analysis.sensitivity.gammas if not low < g < high]
    if outside:
        raise ConfigError("sensitivity.gammas", f"{outside} lie outside agent.gamma_bounds "
                                                f"{list(cfg.agent.gamma_bounds)}")
    if "replication" in sections:
        check_replication(cfg.seeds, analysis.replication)
    check_claims(cfg, analysis)
    return cfg


def check_claims(cfg: ExperimentConfig, analysis: AnalysisConfig) -> None:
    """Raise a :class:`ConfigError` naming ``claims.tested`` when it lists a claim that the
    experiment's horizons, schemes or sensitivity sweep cannot support
    (:func:`mgrl.claim_support.claim_support`)."""
    support = claim_support(cfg, analysis.sensitivity.gammas)
    for claim in analysis.claims.tested or ():
        if support[claim] is not None:
            raise ConfigError("claims.tested", f"{claim} cannot be tested here: {support[claim]}")


def analysis_config_from_dict(raw: Mapping[str, Any]) -> AnalysisConfig:
    """The :data:`ANALYSIS_SECTIONS` of a config (other keys ignored), strictly validated."""
    if not isinstance(raw, Mapping):
        raise ConfigError("<root>", "the config must be a mapping")
    cfg = _build(AnalysisConfig, {k: raw[k] for k in ANALYSIS_SECTIONS if k in raw}, prefix="")
    _raise_first(_constraint_problems(cfg, ""))
    return cfg


def validate(cfg: ExperimentConfig) -> None:
    """Check every field's constraints, then relations between fields; raise :class:`ConfigError`
    naming the first offending key."""
    problems = _constraint_problems(cfg, "")
    for name, scheme in cfg.schemes.items():
        problems += _constraint_problems(scheme, f"schemes.{name}.")
        problems += validate_scheme_name(name) + validate_scheme(name, scheme, cfg.horizons)
    _raise_first(problems)

    def check(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(key, message)

    check(bool(cfg.name) and "/" not in cfg.name, "name", "must be a non-empty name without '/'")
    e, n, a, p = cfg.env, cfg.network, cfg.agent, cfg.probe
    if e.name == "snake":
        check(n.kernel_size <= min(e.num_rows, e.num_cols), "network.kernel_size",
              "must be at most the board size")
    else:
        check(not n.conv_channels, "network.conv_channels",
              f"env.name {e.name} has a vector observation: convolutions need Snake's grid (set [])")
    check(not n.conv_strides or len(n.conv_strides) == len(n.conv_channels), "network.conv_strides",
          f"must give one stride per convolution ({len(n.conv_channels)}) or none, got "
          f"{list(n.conv_strides)}")
    low, high = (a.gamma_bounds + (0.0, 1.0))[:2]
    check(len(a.gamma_bounds) == 2 and low < high, "agent.gamma_bounds",
          f"must be [low, high] with low < high, got {list(a.gamma_bounds)}")
    check(low < a.gamma_init < high, "agent.gamma_init",
          f"must lie strictly inside agent.gamma_bounds {list(a.gamma_bounds)}, got {a.gamma_init}")
    check(a.critic == "learned" or e.name == "discounting_chain", "agent.critic",
          f"exact values exist for discounting_chain only, not env.name {e.name}")
    if a.outer_critic or any(s.outer_critic for s in cfg.schemes.values()):
        check(a.outer_value_coef is not None, "agent.outer_value_coef",
              "the outer critic is on (agent.outer_critic or a scheme's outer_critic) but its TD "
              "term has no weight: set agent.outer_value_coef > 0")
    check(not (cfg.meta.remat and cfg.meta.gradient == "forward"), "meta.remat",
          "remat trades compute for reverse-mode memory; forward-mode memory does not grow with K "
          "(set meta.remat: false, or meta.gradient: reverse)")
    check(p.reference_horizon >= max(cfg.horizons), "probe.reference_horizon",
          f"must be >= the largest horizon ({max(cfg.horizons)})")
    check(all(c <= cfg.train.num_intervals for c in p.checkpoints), "probe.checkpoints",
          f"intervals must be in 1..train.num_intervals ({cfg.train.num_intervals})")


_BOUNDS = {"minimum": (lambda v, b: v >= b, ">="), "maximum": (lambda v, b: v <= b, "<="),
           "exclusiveMinimum": (lambda v, b: v > b, ">"),
           "exclusiveMaximum": (lambda v, b: v < b, "<")}


def _value_problems(value: Any, constraints: Mapping[str, Any]) -> list[str]:
    """What is wrong with one scalar ``value`` under ``constraints`` (empty: nothing)."""
    problems = []
    if "enum" in constraints and value not in constraints["enum"]:
        problems.append(f"must be one of {constraints['enum']}, got {value!r}")
    for name, (ok, symbol) in _BOUNDS.items():
        if name in constraints and not ok(value, constraints[name]):
            problems.append(f"must be {symbol} {constraints[name]}, got {value!r}")
    return problems


def _constraint_problems(obj: Any, prefix: str) -> list[tuple[str, str]]:
    """(dotted key, message) for every field of dataclass ``obj`` (recursively) that breaks the
    constraints of its :func:`setting`."""
    problems = []
    for field in dataclasses.fields(obj):
        key, value, meta = f"{prefix}{field.name}", getattr(obj, field.name), field.metadata
        if dataclasses.is_dataclass(value):
            problems += _constraint_problems(value, f"{key}.")
        elif isinstance(value, tuple):
            if len(value) < meta.get("minItems", 0):
                problems.append((key, f"must list at least {meta['minItems']} value(s)"))
            if meta.get("uniqueItems") and len(set(value)) != len(value):
                problems.append((key, f"values must be distinct, got {list(value)}"))
            for item in value:
                problems += [(key, message) for message in _value_problems(item, meta.get("items", {}))]
        elif value is not None:
            problems += [(key, message) for message in _value_problems(value, meta)]
    return problems


def _raise_first(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise ConfigError(*problems[0])


def _build(cls: type, raw: Mapping[str, Any], prefix: str):
    """Instantiate dataclass ``cls`` from ``raw``, rejecting unknown keys and wrong types."""
    if not isinstance(raw, Mapping):
        raise ConfigError(prefix.rstrip(".") or "<root>", f"must be a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(dotted, f"unknown key (allowed here: {sorted(fields)})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value if value is not None else {}, prefix=f"{dotted}.")
        else:
            kwargs[key] = _coerce(value, hint, dotted)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list, got {value!r}")
        return tuple(_coerce(v, args[0], key) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    return value  # pragma: no cover


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def to_plain(obj: Any) -> Any:
    """Settings as plain JSON-able data (dicts, lists, scalars), recursively."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj
