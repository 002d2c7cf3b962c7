"""Estimator semantics: what each scheme computes, which (K, scheme) pairs coincide, run names.

A *scheme* (config ``schemes.<name>``) names one meta-gradient estimator at every horizon K. A
weighting scheme mixes the outer losses l_k = L'(theta_k; R_k) of the K inner steps of a window::

    meta_loss(eta) = sum_{k=1..K} w_k l_k,    w_k >= 0,  sum_k w_k = 1          (mgrl.losses.mixed_outer_loss)

    last     w = e_K                                            the K-step meta-gradient
    uniform  w_k = 1/K                                          mixing: mean of the k-step meta-gradients
    lambda   w_k = (1 - rho) rho^(k-1) (k < K),  w_K = rho^(K-1)  TD(lambda)-style (rho = 1: last)
    custom   explicit ``weights``, only at K = len(weights)

and ``bmg`` (Flennerhag et al. 2021) matches policies at theta_K instead: L = ``bootstrap_steps``
more inner updates with the current eta and no gradient give a target, and
``meta_loss = mean_{s in R_K} KL(pi_{theta_{K+L}}(.|s) || pi_{theta_K}(.|s))`` (mgrl.losses.kl_matching).
Any scheme may take its outer advantages A' from an outer critic (``outer_critic``).

Two (K, scheme) pairs are one estimator when their weights, L and outer-advantage source agree:
every weighting scheme at K = 1, e.g. ``lambda`` with rho = 0.5 and ``uniform`` at K = 2. Such an
estimator is trained and probed once (:func:`scheme_aliases`). Estimators that are not weightings of
the experiment's policy-gradient meta-loss (``bmg``, another critic's A') are *extra*: compared with
``last`` and ``uniform``, never counted as mixing (:func:`extra_estimators`).

Run names: a scheme name, ``a2c`` (the baseline: plain A2C through the same code, gamma and lambda
fixed) or ``a2c_gamma<g>`` (the baseline at fixed gamma g: the sensitivity sweep).

No heavy imports: the Snakefile imports this module to build the job list.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple, Sequence

from mgrl.config import (BOOTSTRAP_TARGETS, MATCHING_FUNCTIONS, MATCHING_STATES, ConfigError,
                         ExperimentConfig, SchemeConfig)

BASELINE_SCHEME = "a2c"
SENSITIVITY_PREFIX = f"{BASELINE_SCHEME}_gamma"
MIXING_BASES = ("last", "uniform")  # what extra estimators are compared with


def validate_scheme(name: str, scheme: SchemeConfig, horizons: Sequence[int]) -> list[tuple[str, str]]:
    """(dotted key, message) of every kind-specific problem of scheme ``name`` (empty: valid).
    Value ranges are checked from the field constraints by mgrl.config."""
    key = f"schemes.{name}"
    problems = []
    if name == BASELINE_SCHEME:
        problems.append((key, f"'{BASELINE_SCHEME}' is reserved for the baseline"))
    if name.startswith(SENSITIVITY_PREFIX):
        problems.append((key, f"names starting with '{SENSITIVITY_PREFIX}' are reserved for the "
                              f"sensitivity sweep"))
    if not name.replace("_", "").replace(".", "").replace("-", "").isalnum():
        problems.append((key, "scheme names may hold letters, digits, '_', '.', '-' only"))
    takes = {"rho": "lambda", "weights": "custom", "bootstrap_steps": "bmg", "matching": "bmg",
             "bootstrap_target": "bmg", "matching_states": "bmg"}
    for field, kind in takes.items():
        if scheme.kind != kind and getattr(scheme, field) is not None:
            problems.append((f"{key}.{field}", f"only the {kind} kind takes {field} (kind is "
                                               f"{scheme.kind})"))
    if scheme.kind == "lambda" and scheme.rho is None:
        problems.append((f"{key}.rho", "the lambda kind needs rho in [0, 1]"))
    if scheme.kind == "custom":
        if not scheme.weights:
            problems.append((f"{key}.weights", "the custom kind needs a non-empty list of weights"))
        elif not math.isclose(sum(scheme.weights), 1.0, abs_tol=1e-6):
            problems.append((f"{key}.weights", f"weights must sum to 1, got {sum(scheme.weights):.6g}"))
        elif len(scheme.weights) not in horizons:
            problems.append((f"{key}.weights", f"has length {len(scheme.weights)}, which is not one "
                                               f"of horizons {list(horizons)}"))
    if scheme.kind == "bmg" and scheme.bootstrap_steps is None:
        problems.append((f"{key}.bootstrap_steps", "the bmg kind needs bootstrap_steps L >= 1 (with "
                         "L = 0 the target is theta_K itself: the meta-loss and its gradient are zero)"))
    if (scheme.kind == "bmg" and scheme.matching_states is not None
            and (scheme.bootstrap_target or BOOTSTRAP_TARGETS[0]) != "outer"):
        problems.append((f"{key}.matching_states", "only the outer bootstrap_target takes "
                         "matching_states (the inner target matches on R_K, the agent's own data)"))
    return problems


# ------------------------------------------------------------------------------------ run names --


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


def is_baseline(name: str) -> bool:
    """Runs without meta-learning: ``a2c`` and the sensitivity runs ``a2c_gamma<g>``."""
    return name == BASELINE_SCHEME or sensitivity_gamma(name) is not None


def sensitivity_schemes(cfg: ExperimentConfig, gammas: Sequence[float]) -> list[str]:
    """Run names of the sweep's training jobs. A gamma equal to ``agent.gamma_init`` is the a2c
    baseline itself (same computation), so it is not trained twice."""
    return [sensitivity_scheme(g) for g in gammas
            if not math.isclose(g, cfg.agent.gamma_init, rel_tol=0.0, abs_tol=1e-12)]


# ----------------------------------------------------------------------------------- estimators --


def scheme_of(cfg: ExperimentConfig, name: str) -> SchemeConfig:
    """The scheme of run name ``name``; a baseline run is a ``last`` scheme at K = 1."""
    if is_baseline(name):
        return SchemeConfig("last")
    if name not in cfg.schemes:
        raise ConfigError("schemes", f"unknown scheme '{name}' (known: {sorted(cfg.schemes)})")
    return cfg.schemes[name]


def bootstrap_steps(scheme: SchemeConfig) -> int:
    """L, the bootstrap updates of a ``bmg`` scheme; 0 for every other kind."""
    return int(scheme.bootstrap_steps) if scheme.kind == "bmg" else 0


class Bootstrap(NamedTuple):
    """How a BMG agent makes its target: L updates, ``target`` (:data:`BOOTSTRAP_TARGETS`) and,
    for the outer target, the matched ``states`` (:data:`MATCHING_STATES`)."""

    steps: int
    target: str
    states: str


def bootstrap_of(scheme: SchemeConfig | None) -> Bootstrap | None:
    """The :class:`Bootstrap` of a ``bmg`` scheme, defaults filled in; None for every other kind."""
    if scheme is None or scheme.kind != "bmg":
        return None
    target = scheme.bootstrap_target or BOOTSTRAP_TARGETS[0]
    states = (scheme.matching_states or MATCHING_STATES[0]) if target == "outer" else "window"
    return Bootstrap(int(scheme.bootstrap_steps), target, states)


def exists_at(scheme: SchemeConfig, horizon: int) -> bool:
    """Whether ``scheme`` is defined at K = ``horizon`` (a custom scheme only at its own K)."""
    return scheme.kind != "custom" or len(scheme.weights) == horizon


def scheme_weights(scheme: SchemeConfig, horizon: int) -> tuple[float, ...]:
    """Weights w_1..w_K of the outer losses at theta_1..theta_K; shape [K], sum 1 (``bmg``: e_K)."""
    if horizon < 1:
        raise ConfigError("horizons", f"K must be >= 1, got {horizon}")
    K = horizon
    if scheme.kind in ("last", "bmg"):
        return (0.0,) * (K - 1) + (1.0,)
    if scheme.kind == "uniform":
        return (1.0 / K,) * K
    if scheme.kind == "lambda":
        rho = float(scheme.rho)
        return tuple((1.0 - rho) * rho ** (k - 1) for k in range(1, K)) + (rho ** (K - 1),)
    if scheme.kind == "custom":
        if len(scheme.weights) != K:
            raise ConfigError("schemes.weights",
                              f"custom weights have length {len(scheme.weights)} but K = {K}")
        return tuple(scheme.weights)
    raise ConfigError("schemes.kind", f"unknown kind '{scheme.kind}'")  # rejected at load time


def uses_outer_critic(cfg: ExperimentConfig, name: str) -> bool:
    """Whether run ``name`` takes its outer advantages from the outer critic: the scheme's
    ``outer_critic`` if set, else ``agent.outer_critic``. The baselines train one whenever any scheme
    uses it, so that their checkpoints, the probed states, hold a trained outer critic."""
    if is_baseline(name):
        return cfg.agent.outer_critic or any(uses_outer_critic(cfg, s) for s in cfg.schemes)
    own = scheme_of(cfg, name).outer_critic
    return cfg.agent.outer_critic if own is None else own


def meta_samples_of(cfg: ExperimentConfig, name: str) -> int:
    """M, the meta-gradient samples averaged per meta-update in run ``name``: the scheme's
    ``meta_samples`` if set, else ``meta.samples``; 1 for the baselines (they learn nothing)."""
    if is_baseline(name):
        return 1
    own = scheme_of(cfg, name).meta_samples
    return int(cfg.meta.samples if own is None else own)


def averaged_schemes(cfg: ExperimentConfig) -> list[str]:
    """Schemes whose runs average M > 1 meta-gradient samples (:func:`meta_samples_of`), in config
    order: the variance intervention (claims C5', C1'), not estimators of their own."""
    return [name for name in cfg.schemes if meta_samples_of(cfg, name) > 1]


def sample_identity(cfg: ExperimentConfig, name: str, horizon: int) -> tuple:
    """What one meta-gradient sample of (K, scheme) computes: (weights rounded to 12 digits, the
    bootstrap (:func:`bootstrap_of`), matching, outer critic). Probes draw one sample per key, so
    they compute it once."""
    scheme = scheme_of(cfg, name)
    return (tuple(round(w, 12) for w in scheme_weights(scheme, horizon)), bootstrap_of(scheme),
            scheme.matching or MATCHING_FUNCTIONS[0], uses_outer_critic(cfg, name))


def estimator_identity(cfg: ExperimentConfig, name: str, horizon: int) -> tuple:
    """What a run's meta-update uses: :func:`sample_identity` and M (:func:`meta_samples_of`).
    Equal identities are one estimator, trained once."""
    return sample_identity(cfg, name, horizon) + (meta_samples_of(cfg, name),)


def scheme_aliases(cfg: ExperimentConfig) -> dict[tuple[int, str], str]:
    """(K, scheme) -> the scheme trained in its place when both are one estimator
    (:func:`estimator_identity`). The trained one is ``last`` if it is among them, else the first
    in config order; custom schemes exist only at their own K."""
    aliases = {}
    names = sorted(cfg.schemes, key=lambda n: n != "last")  # stable: "last" first, then config order
    for horizon in cfg.horizons:
        seen: dict[tuple, str] = {}
        for name in names:
            if not exists_at(cfg.schemes[name], horizon):
                continue
            identity = estimator_identity(cfg, name, horizon)
            if identity in seen:
                aliases[(horizon, name)] = seen[identity]
            else:
                seen[identity] = name
    return aliases


def distinct_training_runs(cfg: ExperimentConfig) -> list[tuple[int, str]]:
    """(K, run name) of every training job's run: the a2c baseline, then each distinct estimator
    once per K (aliases are not trained), in config order."""
    aliases = scheme_aliases(cfg)
    return [(1, BASELINE_SCHEME)] + [
        (horizon, name) for horizon in cfg.horizons for name, scheme in cfg.schemes.items()
        if exists_at(scheme, horizon) and (horizon, name) not in aliases]


def extra_estimators(cfg: ExperimentConfig) -> list[str]:
    """Schemes that are not weightings of the experiment's K-step policy-gradient meta-loss:
    ``bmg`` schemes, and schemes whose outer critic differs from ``agent.outer_critic`` (their A'
    comes from another critic). The claims compare each with ``last`` and ``uniform`` (rows E1,
    E2) instead of counting it as mixing (C3, C4)."""
    return [name for name, s in cfg.schemes.items()
            if s.kind == "bmg" or uses_outer_critic(cfg, name) != cfg.agent.outer_critic]


def mixing_schemes(cfg: ExperimentConfig) -> list[str]:
    """The weightings of one policy-gradient meta-loss: every scheme that is neither extra nor
    averaged (:func:`averaged_schemes`: the same weighting as another, with more samples)."""
    other = set(extra_estimators(cfg)) | set(averaged_schemes(cfg))
    return [name for name in cfg.schemes if name not in other]


def run_config(cfg: ExperimentConfig, horizon: int, name: str,
               seeds: Sequence[int] | None = None) -> ExperimentConfig:
    """The config of one training run: exactly what determines its results (its hash names the
    run's checkpoints; the Snakemake rule passes it as a param).

    Other horizons and schemes, and probe sizes, are dropped (``probe.checkpoints`` stays: it says
    which states a run keeps), so adding a seed or a scheme leaves existing runs unchanged;
    ``seeds`` None keeps ``cfg.seeds``. ``agent.outer_critic`` is the run's (:func:`uses_outer_critic`),
    and ``meta.samples`` (:func:`meta_samples_of`);
    a baseline learns no meta-parameter, and ``a2c_gamma<g>`` has ``agent.gamma_init = g``.
    Idempotent: the run config of a run config is itself. Raises ConfigError for an unknown run
    name, K < 1, or a baseline at K != 1.
    """
    if horizon < 1:
        raise ConfigError("horizon", f"K must be >= 1, got {horizon}")
    if is_baseline(name) and horizon != 1:
        raise ConfigError("horizon", f"the '{name}' baseline has K = 1, got {horizon}")
    scheme = scheme_of(cfg, name)
    agent = dataclasses.replace(cfg.agent, outer_critic=uses_outer_critic(cfg, name))
    meta = cfg.meta
    gamma = sensitivity_gamma(name)
    if gamma is not None:
        agent = dataclasses.replace(agent, gamma_init=gamma)
    if is_baseline(name):
        meta = dataclasses.replace(meta, learn=())
    meta = dataclasses.replace(meta, samples=meta_samples_of(cfg, name))
    return dataclasses.replace(
        cfg, agent=agent, meta=meta,
        seeds=tuple(int(s) for s in (cfg.seeds if seeds is None else seeds)),
        horizons=(int(horizon),),
        schemes={"last" if is_baseline(name) else name: scheme},
        probe=type(cfg.probe)(checkpoints=cfg.probe.checkpoints, reference_horizon=int(horizon)),
    )
