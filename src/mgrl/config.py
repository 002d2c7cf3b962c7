"""Typed, frozen experiment configuration loaded from YAML.

This module owns the only code that reads configuration: everything downstream receives the
dataclasses below (or plain arguments derived from them). Loading is strict: an unknown key or an
invalid value raises :class:`ConfigError` whose message names the offending dotted key, before any
work starts.

Layout of a config file (see ``config.yaml`` at the repository root for a commented example)::

    name: default            # experiment name, used in output paths
    seeds: [0, 1, 2]
    horizons: [1, 2, 4]      # K, inner updates per meta-update
    schemes:                 # how the K outer losses are weighted
      last: {kind: last}
      uniform: {kind: uniform}
      lambda_0.5: {kind: lambda, rho: 0.5}
    env: {...}; network: {...}; agent: {...}; meta: {...}; train: {...}; probe: {...}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

BASELINE_SCHEME = "a2c"
"""Reserved scheme name: plain A2C, no meta-learning (gamma and lambda stay at their initial values)."""

SENSITIVITY_PREFIX = f"{BASELINE_SCHEME}_gamma"
"""Run names ``a2c_gamma<g>`` (e.g. ``a2c_gamma0.95``): the a2c baseline with gamma fixed at g (the
gamma-sensitivity sweep, config ``sensitivity.gammas``); reserved, like ``a2c``."""

ANALYSIS_SECTIONS = ("sensitivity", "claims")
"""Top-level config sections that change only which runs are compared and how, never what one
training or probe job computes: they live in :class:`AnalysisConfig`, outside
:class:`ExperimentConfig`, so they are in no job's config (nor its hash)."""

META_PARAMETERS = ("gamma", "lambda")
SCHEME_KINDS = ("last", "uniform", "lambda", "custom", "bmg")
MATCHING_FUNCTIONS = ("kl",)
"""Matching functions of the ``bmg`` scheme: ``kl`` = mean over the states s of theta_K's rollout of
KL(pi_target(.|s) || pi_theta_K(.|s)) (target first, as in Flennerhag et al. 2021)."""
OPTIMIZERS = ("rmsprop", "adam")


class ConfigError(ValueError):
    """An invalid configuration; the message starts with the dotted key at fault."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key '{key}': {message}")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Jumanji Snake, built from explicit sizes (never from a registered name)."""

    num_rows: int = 6
    num_cols: int = 6
    time_limit: int = 500
    num_envs: int = 64  # B, environments stepped in parallel (one batch axis)
    rollout_length: int = 5  # T, environment steps per inner update


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Separate actor and critic, each a conv torso followed by an MLP."""

    conv_channels: tuple[int, ...] = (32, 32)
    kernel_size: int = 2
    policy_hidden: tuple[int, ...] = (64, 64)
    value_hidden: tuple[int, ...] = (128, 128)
    conv_impl: str = "matmul"  # "matmul" (fast on CPU, same parameters) or "xla" (hk.Conv2D)


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Inner A2C learner: loss = pg_coef*PG + value_coef*TD - entropy_coef*entropy."""

    optimizer: str = "rmsprop"
    learning_rate: float = 5e-4
    pg_coef: float = 1.0
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    gamma_init: float = 0.8
    lambda_init: float = 0.95
    outer_gamma: float = 1.0  # gamma' of the outer (validation) policy-gradient loss
    outer_lambda: float = 1.0  # lambda' of the outer loss
    outer_critic: bool = False  # a second critic trained with gamma', lambda' gives the outer advantages
    outer_value_coef: float | None = None  # weight of its TD term in the inner loss (needed when on)


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """Outer learner of the meta-parameters eta (logits of gamma and lambda)."""

    learn: tuple[str, ...] = ("gamma",)  # which meta-parameters receive meta-gradient updates
    learning_rate: float = 3e-3
    clip_norm: float = 0.1  # global-norm clip of the meta-gradient before Adam
    remat: bool = False  # jax.checkpoint each inner step: memory ~O(1) in K, ~1.3x compute


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    num_intervals: int = 10  # logging intervals per run (one compiled call each)
    inner_updates_per_interval: int = 8  # rounded up to a multiple of K
    checkpoint_every: int = 1  # intervals between checkpoints
    dtype: str = "float32"  # float64 only for gradient checks
    poison_at_interval: int | None = None  # test-only: NaN meta-parameters before this interval


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """Meta-gradient estimator probes (variance, bias, SNR) on saved training states."""

    num_samples: int = 16  # M samples per (checkpoint, K, scheme)
    reference_horizon: int = 8  # K_ref of the reference estimator ('last' scheme)
    reference_samples: int = 32  # M_ref
    checkpoints: tuple[int, ...] = (1,)  # training intervals whose states are probed
    bootstrap: int = 1000  # bootstrap resamples for 95% CIs
    samples_per_batch: int | None = None  # None: vmap all M at once (GPU); b: lax.map over chunks


@dataclasses.dataclass(frozen=True)
class SchemeConfig:
    """How the outer losses at theta_1..theta_K are weighted (weights are non-negative, sum to 1).

    * ``last``:    w = e_K (the standard K-step meta-gradient)
    * ``uniform``: w_k = 1/K
    * ``lambda``:  w_k = (1-rho) rho^(k-1) for k < K, w_K = rho^(K-1)  (TD(lambda)-style; rho=1 is last)
    * ``custom``:  explicit ``weights`` (only valid for K = len(weights))
    * ``bmg``:     bootstrapped meta-gradient (Flennerhag et al. 2021): after the K differentiated
      inner updates, ``bootstrap_steps`` L more with the current eta and no gradient give a target
      policy; the meta-loss is ``matching`` (KL) between the target and pi_theta_K (weights e_K)

    ``outer_critic`` (any kind): overrides ``agent.outer_critic`` for this scheme's runs and probes.
    """

    kind: str = "last"
    rho: float | None = None
    weights: tuple[float, ...] | None = None
    bootstrap_steps: int | None = None
    matching: str | None = None
    outer_critic: bool | None = None

    @property
    def bmg_steps(self) -> int:
        """L, the bootstrap updates of a ``bmg`` scheme; 0 for every other kind."""
        return int(self.bootstrap_steps) if self.kind == "bmg" else 0


def stable_hash(plain: Mapping[str, Any]) -> str:
    """Short (12 hex digits) hash of plain JSON-able settings, independent of key order."""
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    name: str = "default"
    seeds: tuple[int, ...] = (0,)
    horizons: tuple[int, ...] = (1,)
    schemes: Mapping[str, SchemeConfig] = dataclasses.field(
        default_factory=lambda: {"last": SchemeConfig("last")}
    )
    seeds_per_job: int = 1
    env: EnvConfig = EnvConfig()
    network: NetworkConfig = NetworkConfig()
    agent: AgentConfig = AgentConfig()
    meta: MetaConfig = MetaConfig()
    train: TrainConfig = TrainConfig()
    probe: ProbeConfig = ProbeConfig()

    def scheme(self, name: str) -> SchemeConfig:
        """The scheme called ``name``; the baseline names (``a2c``, ``a2c_gamma<g>``) give a
        ``last`` scheme (K = 1)."""
        if name == BASELINE_SCHEME or sensitivity_gamma(name) is not None:
            return SchemeConfig("last")
        if name not in self.schemes:
            raise ConfigError("schemes", f"unknown scheme '{name}' (known: {sorted(self.schemes)})")
        return self.schemes[name]

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def uses_outer_critic(self, scheme: str) -> bool:
        """Whether the run (and probe) of ``scheme`` takes its outer advantages from the outer
        critic: the scheme's ``outer_critic`` if set, else ``agent.outer_critic``. The baselines
        (``a2c``, ``a2c_gamma<g>``) train it whenever any scheme uses it, so that their checkpoints,
        the probed states, hold a trained outer critic."""
        if scheme == BASELINE_SCHEME or sensitivity_gamma(scheme) is not None:
            return self.agent.outer_critic or any(
                self.uses_outer_critic(name) for name in self.schemes)
        own = self.scheme(scheme).outer_critic
        return self.agent.outer_critic if own is None else own

    def for_run(self, horizon: int, scheme: str, seeds: tuple[int, ...]) -> "ExperimentConfig":
        """The config of one training job: only what determines its results.

        Other seeds, horizons and schemes, and probe sizes, are dropped, so adding a seed or a
        scheme to the experiment leaves the hash (and checkpoints, and Snakemake params) of existing
        runs unchanged. ``probe.checkpoints`` stays: it decides which states a run keeps. A
        sensitivity run ``a2c_gamma<g>`` is the a2c baseline with ``agent.gamma_init = g`` and
        ``meta.learn = ()``.
        """
        scheme_cfg = self.scheme(scheme)
        base = dataclasses.replace(self, agent=dataclasses.replace(
            self.agent, outer_critic=self.uses_outer_critic(scheme)))
        gamma = sensitivity_gamma(scheme)
        if gamma is not None:
            base = dataclasses.replace(
                base, agent=dataclasses.replace(base.agent, gamma_init=gamma),
                meta=dataclasses.replace(self.meta, learn=()))
            scheme = BASELINE_SCHEME
        return dataclasses.replace(
            base,
            seeds=tuple(int(s) for s in seeds),
            horizons=(int(horizon),),
            schemes={scheme if scheme != BASELINE_SCHEME else "last": scheme_cfg},
            probe=ProbeConfig(checkpoints=self.probe.checkpoints, reference_horizon=int(horizon)),
        )

    def hash(self) -> str:
        """Short stable hash of the whole config (a provenance column)."""
        return stable_hash(self.to_dict())


@dataclasses.dataclass(frozen=True)
class SensitivityConfig:
    """The gamma-sensitivity sweep: the a2c baseline trained at each fixed gamma (empty: off)."""

    gammas: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class ClaimsConfig:
    """Settings of the claims table's verdicts."""

    return_margin: float = 0.05  # delta of C4/C5 as a fraction of the a2c baseline's final return


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """The analysis-only sections of a config file (:data:`ANALYSIS_SECTIONS`)."""

    sensitivity: SensitivityConfig = SensitivityConfig()
    claims: ClaimsConfig = ClaimsConfig()

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)


def sensitivity_scheme(gamma: float) -> str:
    """The run name of the a2c baseline at fixed ``gamma``: ``a2c_gamma<g>`` (``repr`` of g)."""
    return f"{SENSITIVITY_PREFIX}{float(gamma)!r}"


def sensitivity_gamma(name: str) -> float | None:
    """The fixed gamma of a run name ``a2c_gamma<g>``, or None if ``name`` is not one."""
    if not name.startswith(SENSITIVITY_PREFIX):
        return None
    try:
        gamma = float(name[len(SENSITIVITY_PREFIX):])
    except ValueError:
        return None
    return gamma if 0.0 < gamma < 1.0 and sensitivity_scheme(gamma) == name else None


def sensitivity_schemes(cfg: ExperimentConfig, analysis: AnalysisConfig) -> list[str]:
    """Run names of the sweep's training jobs. A gamma equal to ``agent.gamma_init`` is the a2c
    baseline itself (same computation), so it is not trained twice."""
    return [sensitivity_scheme(g) for g in analysis.sensitivity.gammas
            if not math.isclose(g, cfg.agent.gamma_init, rel_tol=0.0, abs_tol=1e-12)]


def scheme_aliases(cfg: ExperimentConfig) -> dict[tuple[int, str], str]:
    """(K, scheme) -> the scheme trained in its place, for schemes whose weights at K equal those
    of another: one estimator, trained once (as all schemes at K = 1).

    The trained one is ``last`` if it is among them, else the first in config order. Custom schemes
    exist only at their own K.
    """
    aliases = {}
    names = sorted(cfg.schemes, key=lambda n: n != "last")  # stable: "last" first, then config order
    for horizon in cfg.horizons:
        seen: dict[tuple[float, ...], str] = {}
        for name in names:
            scheme = cfg.schemes[name]
            if scheme.kind == "custom" and len(scheme.weights) != horizon:
                continue
            key = (tuple(round(w, 12) for w in scheme_weights(scheme, horizon)),
                   scheme.bmg_steps, scheme.matching or "kl",
                   cfg.uses_outer_critic(name))
            if key in seen:
                aliases[(horizon, name)] = seen[key]
            else:
                seen[key] = name
    return aliases


def extra_estimators(cfg: ExperimentConfig) -> list[str]:
    """Schemes that are not weightings of the experiment's K-step policy-gradient meta-loss: ``bmg``
    schemes and schemes whose ``outer_critic`` differs from ``agent.outer_critic`` (their A' comes
    from another critic). The claims table compares each with ``last`` and ``uniform`` (rows E1, E2) instead of
    counting it as a mixing scheme (C3, C4)."""
    return [name for name, s in cfg.schemes.items()
            if s.kind == "bmg" or cfg.uses_outer_critic(name) != cfg.agent.outer_critic]


def format_aliases(aliases: dict[tuple[int, str], str]) -> str:
    """``K:alias=trained`` items joined by ';' (the ``--aliases`` argument of the CLI)."""
    return ";".join(f"{k}:{a}={t}" for (k, a), t in sorted(aliases.items()))


def parse_aliases(text: str | None) -> dict[tuple[int, str], str]:
    """Inverse of :func:`format_aliases` (empty or None: no aliases)."""
    out = {}
    for item in (text or "").split(";"):
        if item.strip():
            head, trained = item.split("=")
            horizon, alias = head.split(":", 1)
            out[(int(horizon), alias)] = trained
    return out


def scheme_weights(scheme: SchemeConfig, horizon: int) -> tuple[float, ...]:
    """Weights w_1..w_K of the outer losses at theta_1..theta_K; shape [K], sum 1."""
    if horizon < 1:
        raise ConfigError("horizons", f"K must be >= 1, got {horizon}")
    K = horizon
    if scheme.kind in ("last", "bmg"):  # bmg matches policies at theta_K only
        w = [0.0] * (K - 1) + [1.0]
    elif scheme.kind == "uniform":
        w = [1.0 / K] * K
    elif scheme.kind == "lambda":
        rho = float(scheme.rho)
        w = [(1.0 - rho) * rho ** (k - 1) for k in range(1, K)] + [rho ** (K - 1)]
    elif scheme.kind == "custom":
        if len(scheme.weights) != K:
            raise ConfigError(
                "schemes.weights", f"custom weights have length {len(scheme.weights)} but K = {K}"
            )
        w = list(scheme.weights)
    else:  # pragma: no cover - rejected at load time
        raise ConfigError("schemes.kind", f"unknown kind '{scheme.kind}'")
    return tuple(w)


# --------------------------------------------------------------------------------------------------
# Loading and validation.


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Read YAML at ``path`` into an :class:`ExperimentConfig`, strictly validated."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("<file>", f"config file '{path}' does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError("<file>", f"'{path}' is not valid YAML: {err}") from err
    if overrides:
        raw = _deep_merge(raw, overrides)
    return config_from_dict(raw)


def config_from_dict(raw: Mapping[str, Any]) -> ExperimentConfig:
    """Build and validate a config from plain data (as parsed from YAML)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("<root>", "the config must be a mapping")
    raw = dict(raw)
    analysis_config_from_dict({k: raw.pop(k) for k in ANALYSIS_SECTIONS if k in raw})  # checked here
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
    return cfg


def analysis_config_from_dict(raw: Mapping[str, Any]) -> AnalysisConfig:
    """The :data:`ANALYSIS_SECTIONS` of a config (other keys ignored), strictly validated."""
    if not isinstance(raw, Mapping):
        raise ConfigError("<root>", "the config must be a mapping")
    cfg = _build(AnalysisConfig, {k: raw[k] for k in ANALYSIS_SECTIONS if k in raw}, prefix="")
    gammas = cfg.sensitivity.gammas
    for g in gammas:
        if not 0.0 < g < 1.0:
            raise ConfigError("sensitivity.gammas", f"every gamma must be strictly inside (0, 1), got {g}")
    if len(set(gammas)) != len(gammas):
        raise ConfigError("sensitivity.gammas", "gammas must be distinct")
    if not cfg.claims.return_margin > 0:
        raise ConfigError("claims.return_margin", f"must be > 0, got {cfg.claims.return_margin}")
    return cfg


def load_analysis_config(path: str | Path) -> AnalysisConfig:
    """The analysis sections of the YAML file at ``path`` (defaults where absent)."""
    return analysis_config_from_dict(yaml.safe_load(Path(path).read_text()) or {})


def validate(cfg: ExperimentConfig) -> None:
    """Check value ranges; raise :class:`ConfigError` naming the first offending key."""

    def check(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(key, message)

    check(bool(cfg.name) and "/" not in cfg.name, "name", "must be a non-empty name without '/'")
    check(len(cfg.seeds) > 0, "seeds", "must list at least one seed")
    check(len(set(cfg.seeds)) == len(cfg.seeds), "seeds", "seeds must be distinct")
    check(all(s >= 0 for s in cfg.seeds), "seeds", "seeds must be non-negative integers")
    check(len(cfg.horizons) > 0, "horizons", "must list at least one horizon K")
    for K in cfg.horizons:
        check(K >= 1, "horizons", f"every K must be >= 1, got {K}")
    check(len(set(cfg.horizons)) == len(cfg.horizons), "horizons", "horizons must be distinct")
    check(cfg.seeds_per_job >= 1, "seeds_per_job", "must be >= 1")
    for name, s in cfg.schemes.items():
        key = f"schemes.{name}"
        check(name != BASELINE_SCHEME, key, f"'{BASELINE_SCHEME}' is reserved for the baseline")
        check(not name.startswith(SENSITIVITY_PREFIX), key,
              f"names starting with '{SENSITIVITY_PREFIX}' are reserved for the sensitivity sweep")
        check(name.replace("_", "").replace(".", "").replace("-", "").isalnum(), key,
              "scheme names may hold letters, digits, '_', '.', '-' only")
        check(s.kind in SCHEME_KINDS, f"{key}.kind", f"must be one of {SCHEME_KINDS}, got '{s.kind}'")
        if s.kind == "lambda":
            check(s.rho is not None, f"{key}.rho", "the lambda scheme needs rho in [0, 1]")
            check(0.0 <= s.rho <= 1.0, f"{key}.rho", f"must be in [0, 1], got {s.rho}")
        else:
            check(s.rho is None, f"{key}.rho", f"only the lambda scheme takes rho (kind is {s.kind})")
        if s.kind == "custom":
            check(s.weights is not None and len(s.weights) > 0, f"{key}.weights",
                  "the custom scheme needs a non-empty list of weights")
            check(all(w >= 0 for w in s.weights), f"{key}.weights", "weights must be non-negative")
            check(math.isclose(sum(s.weights), 1.0, abs_tol=1e-6), f"{key}.weights",
                  f"weights must sum to 1, got {sum(s.weights):.6g}")
            check(len(s.weights) in cfg.horizons, f"{key}.weights",
                  f"has length {len(s.weights)}, which is not one of horizons {list(cfg.horizons)}")
        else:
            check(s.weights is None, f"{key}.weights", "only the custom scheme takes weights")
        if s.kind == "bmg":
            check(s.bootstrap_steps is not None and s.bootstrap_steps >= 1, f"{key}.bootstrap_steps",
                  f"the bmg scheme needs bootstrap_steps L >= 1, got {s.bootstrap_steps} (with L = 0 "
                  f"the target is theta_K itself: the meta-loss and its gradient are zero)")
            check(s.matching is None or s.matching in MATCHING_FUNCTIONS, f"{key}.matching",
                  f"unknown matching function '{s.matching}' (known: {MATCHING_FUNCTIONS})")
        else:
            check(s.bootstrap_steps is None, f"{key}.bootstrap_steps",
                  f"only the bmg scheme takes bootstrap_steps (kind is {s.kind})")
            check(s.matching is None, f"{key}.matching",
                  f"only the bmg scheme takes a matching function (kind is {s.kind})")
    e = cfg.env
    check(e.num_rows >= 4, "env.num_rows", f"board too small: need >= 4 rows, got {e.num_rows}")
    check(e.num_cols >= 4, "env.num_cols", f"board too small: need >= 4 columns, got {e.num_cols}")
    check(e.time_limit >= 1, "env.time_limit", "must be >= 1")
    check(e.num_envs >= 1, "env.num_envs", "must be >= 1")
    check(e.rollout_length >= 1, "env.rollout_length", "must be >= 1")
    n = cfg.network
    check(len(n.conv_channels) >= 1 and all(c >= 1 for c in n.conv_channels),
          "network.conv_channels", "must be a non-empty list of positive integers")
    check(1 <= n.kernel_size <= min(e.num_rows, e.num_cols), "network.kernel_size",
          "must be between 1 and the board size")
    check(n.conv_impl in ("matmul", "xla"), "network.conv_impl", "must be matmul or xla")
    for key in ("policy_hidden", "value_hidden"):
        check(all(h >= 1 for h in getattr(n, key)), f"network.{key}", "sizes must be positive")
    a = cfg.agent
    check(a.optimizer in OPTIMIZERS, "agent.optimizer", f"must be one of {OPTIMIZERS}")
    check(a.learning_rate > 0, "agent.learning_rate", "must be > 0")
    for key in ("pg_coef", "value_coef", "entropy_coef"):
        check(getattr(a, key) >= 0, f"agent.{key}", "must be >= 0")
    for key in ("gamma_init", "lambda_init"):
        check(0.0 < getattr(a, key) < 1.0, f"agent.{key}", "must be strictly inside (0, 1)")
    for key in ("outer_gamma", "outer_lambda"):
        check(0.0 <= getattr(a, key) <= 1.0, f"agent.{key}", "must be in [0, 1]")
    if a.outer_critic or any(s.outer_critic for s in cfg.schemes.values()):
        check(a.outer_value_coef is not None, "agent.outer_value_coef",
              "the outer critic is on (agent.outer_critic or a scheme's outer_critic) but its TD "
              "term has no weight: set agent.outer_value_coef > 0")
    check(a.outer_value_coef is None or a.outer_value_coef > 0, "agent.outer_value_coef",
          f"must be > 0 (or null when the outer critic is off), got {a.outer_value_coef}")
    m = cfg.meta
    for p in m.learn:
        check(p in META_PARAMETERS, "meta.learn", f"unknown meta-parameter '{p}' ({META_PARAMETERS})")
    check(m.learning_rate > 0, "meta.learning_rate", "must be > 0")
    check(m.clip_norm > 0, "meta.clip_norm", "must be > 0")
    t = cfg.train
    check(t.num_intervals >= 1, "train.num_intervals", "must be >= 1")
    check(t.inner_updates_per_interval >= 1, "train.inner_updates_per_interval", "must be >= 1")
    check(t.checkpoint_every >= 1, "train.checkpoint_every", "must be >= 1")
    check(t.dtype in ("float32", "float64"), "train.dtype", "must be float32 or float64")
    check(t.poison_at_interval is None or t.poison_at_interval >= 1, "train.poison_at_interval",
          "must be null or >= 1")
    p = cfg.probe
    check(p.num_samples >= 2, "probe.num_samples", "need at least 2 samples for a variance")
    check(p.reference_samples >= 1, "probe.reference_samples", "must be >= 1")
    check(p.reference_horizon >= max(cfg.horizons), "probe.reference_horizon",
          f"must be >= the largest horizon ({max(cfg.horizons)})")
    check(all(1 <= c <= t.num_intervals for c in p.checkpoints), "probe.checkpoints",
          f"intervals must be in 1..train.num_intervals ({t.num_intervals})")
    check(p.bootstrap >= 10, "probe.bootstrap", "must be >= 10")
    check(p.samples_per_batch is None or p.samples_per_batch >= 1, "probe.samples_per_batch",
          "must be null or >= 1")


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
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return str(value)
    return value  # pragma: no cover


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj
