"""Which runs an experiment has: run names, the (K, scheme) pairs that coincide, run configs.

A *scheme* (config ``schemes.<name>``) names one meta-gradient estimator at every horizon K; what
each kind computes is its module's in :mod:`mgrl.estimators`. Two (K, scheme) pairs are one
estimator when their samples compute the same thing (:func:`mgrl.estimators.sample_identity`),
with the same outer-advantage source and M: every weighting at K = 1, e.g. ``lambda`` with
rho = 0.5 and ``uniform`` at K = 2. Such an estimator is trained and probed once
(:func:`scheme_aliases`). Estimators that are not weightings of the experiment's policy-gradient
meta-loss (``bmg``, another critic's A') are *extra*: compared with the claims' K-step and mixing
schemes, never counted as mixing (:func:`extra_estimators`).

Run names: a scheme name, ``a2c`` (the baseline: plain A2C through the same code, gamma and lambda
fixed) or ``a2c_gamma<g>`` (the baseline at fixed gamma g: the sensitivity sweep).

No heavy imports: the Snakefile imports this module to build the job list.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from mgrl.config import ExperimentConfig

from mgrl.estimators import SchemeConfig, claim_role, exists_at, is_weighting, resolve
from mgrl.estimators import sample_identity as kind_sample_identity
from mgrl.settings import ConfigError

BASELINE_SCHEME = "a2c"
SENSITIVITY_PREFIX = f"{BASELINE_SCHEME}_gamma"


def validate_scheme_name(name: str) -> list[tuple[str, str]]:
    """(dotted key, message) of problems with a scheme's name (the run names it must not take)."""
    key = f"schemes.{name}"
    problems = []
    if name == BASELINE_SCHEME:
        problems.append((key, f"'{BASELINE_SCHEME}' is reserved for the baseline"))
    if name.startswith(SENSITIVITY_PREFIX):
        problems.append((key, f"names starting with '{SENSITIVITY_PREFIX}' are reserved for the "
                              f"sensitivity sweep"))
    if not name.replace("_", "").replace(".", "").replace("-", "").isalnum():
        problems.append((key, "scheme names may hold letters, digits, '_', '.', '-' only"))
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
        return SchemeConfig()  # the default kind, last: a 1-step window that learns nothing
    if name not in cfg.schemes:
        raise ConfigError("schemes", f"unknown scheme '{name}' (known: {sorted(cfg.schemes)})")
    return cfg.schemes[name]


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


def meta_of(cfg: ExperimentConfig, name: str):
    """The meta-learner settings of run ``name``: ``meta`` with the scheme's overrides of the
    sample count (:func:`meta_samples_of`), learning rate and optimiser; a baseline learns no
    meta-parameter (``learn = ()``, M = 1)."""
    meta = dataclasses.replace(cfg.meta, samples=meta_samples_of(cfg, name))
    if is_baseline(name):
        return dataclasses.replace(meta, learn=())
    scheme = scheme_of(cfg, name)
    if scheme.meta_learning_rate is not None:
        meta = dataclasses.replace(meta, learning_rate=float(scheme.meta_learning_rate))
    if scheme.meta_optimizer is not None:
        meta = dataclasses.replace(meta, optimizer=scheme.meta_optimizer)
    return meta


def meta_update_identity(cfg: ExperimentConfig, name: str) -> tuple:
    """What a run's meta-update does with its samples: (M, optimiser, learning rate)."""
    meta = meta_of(cfg, name)
    return (int(meta.samples), meta.optimizer, float(meta.learning_rate))


def averaged_schemes(cfg: ExperimentConfig) -> list[str]:
    """Schemes whose runs average more meta-gradient samples (:func:`meta_samples_of`) than the
    experiment's ``meta.samples``, with its meta-optimiser and rate, in config order: the variance
    intervention (claims C5', C1'), not estimators of their own."""
    own = (cfg.meta.optimizer, float(cfg.meta.learning_rate))
    return [name for name in cfg.schemes if meta_samples_of(cfg, name) > cfg.meta.samples
            and meta_update_identity(cfg, name)[1:] == own]


def intervention_schemes(cfg: ExperimentConfig) -> list[str]:
    """Schemes whose meta-update differs from the experiment's (:func:`meta_update_identity`: more
    samples, another optimiser or learning rate), in config order: the averaged schemes and the
    intervention's controls, not estimators of their own."""
    default = (int(cfg.meta.samples), cfg.meta.optimizer, float(cfg.meta.learning_rate))
    return [name for name in cfg.schemes if meta_update_identity(cfg, name) != default]


def sample_identity(cfg: ExperimentConfig, name: str, horizon: int) -> tuple:
    """What one meta-gradient sample of (K, scheme) computes: the kind's identity
    (:func:`mgrl.estimators.sample_identity`) and the outer-advantage source. Probes draw one
    sample per key, so they compute it once."""
    return kind_sample_identity(scheme_of(cfg, name), horizon) + (uses_outer_critic(cfg, name),)


def estimator_identity(cfg: ExperimentConfig, name: str, horizon: int) -> tuple:
    """What a run's meta-update uses: :func:`sample_identity` and :func:`meta_update_identity`.
    Equal identities are one estimator, trained once."""
    return sample_identity(cfg, name, horizon) + meta_update_identity(cfg, name)


def scheme_aliases(cfg: ExperimentConfig) -> dict[tuple[int, str], str]:
    """(K, scheme) -> the scheme trained in its place when both are one estimator
    (:func:`estimator_identity`). The trained one is ``last`` if it is among them, else the first
    in config order; custom schemes exist only at their own K."""
    aliases = {}
    k_step = claim_roles(cfg).get("k_step")
    names = sorted(cfg.schemes, key=lambda n: n != k_step)  # stable: the K-step scheme first
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
            if not is_weighting(s) or uses_outer_critic(cfg, name) != cfg.agent.outer_critic]


def mixing_schemes(cfg: ExperimentConfig) -> list[str]:
    """The weightings of one policy-gradient meta-loss: every scheme that is neither extra nor an
    intervention arm (:func:`intervention_schemes`: the same weighting as another, meta-updated
    otherwise)."""
    other = set(extra_estimators(cfg)) | set(intervention_schemes(cfg))
    return [name for name in cfg.schemes if name not in other]


def claim_roles(cfg: ExperimentConfig) -> dict[str, str]:
    """Role -> scheme name for the claims, chosen by kind, never by name: ``k_step`` the first
    scheme (config order) among :func:`mixing_schemes` whose kind declares ``CLAIM_ROLE =
    "k_step"`` (``last``), ``mixing`` the first whose kind declares ``"mixing"`` (``uniform``),
    the base the extra estimators are compared with beside ``k_step``. A role that no scheme
    fills is absent (its claims get no row)."""
    roles: dict[str, str] = {}
    for name in mixing_schemes(cfg):
        role = claim_role(cfg.schemes[name].kind)
        if role is not None:
            roles.setdefault(role, name)
    return roles


def resolved(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with every scheme's kind defaults filled in (:func:`mgrl.estimators.resolve`): what
    a probe job's config (and its hash) records."""
    return dataclasses.replace(cfg, schemes={n: resolve(s) for n, s in cfg.schemes.items()})


def run_config(cfg: ExperimentConfig, horizon: int, name: str,
               seeds: Sequence[int] | None = None) -> ExperimentConfig:
    """The config of one training run: exactly what determines its results (its hash names the
    run's checkpoints; the Snakemake rule passes it as a param).

    Other horizons and schemes, and probe sizes, are dropped (``probe.checkpoints`` stays: it says
    which states a run keeps), so adding a seed or a scheme leaves existing runs unchanged;
    ``seeds`` None keeps ``cfg.seeds``. ``agent.outer_critic`` is the run's (:func:`uses_outer_critic`),
    ``meta`` the run's (:func:`meta_of`) and the scheme has its kind's defaults filled in
    (:func:`mgrl.estimators.resolve`), so a changed default changes the config hash;
    a baseline learns no meta-parameter, and ``a2c_gamma<g>`` has ``agent.gamma_init = g``.
    Idempotent: the run config of a run config is itself. Raises ConfigError for an unknown run
    name, K < 1, or a baseline at K != 1.
    """
    if horizon < 1:
        raise ConfigError("horizon", f"K must be >= 1, got {horizon}")
    if is_baseline(name) and horizon != 1:
        raise ConfigError("horizon", f"the '{name}' baseline has K = 1, got {horizon}")
    scheme = scheme_of(cfg, name)
    if scheme.horizons is not None:  # the run's own K: valid in its one-K config, idempotent
        scheme = dataclasses.replace(scheme, horizons=(int(horizon),))
    agent = dataclasses.replace(cfg.agent, outer_critic=uses_outer_critic(cfg, name))
    gamma = sensitivity_gamma(name)
    if gamma is not None:
        agent = dataclasses.replace(agent, gamma_init=gamma)
    return dataclasses.replace(
        cfg, agent=agent, meta=meta_of(cfg, name),
        seeds=tuple(int(s) for s in (cfg.seeds if seeds is None else seeds)),
        horizons=(int(horizon),),
        schemes={"last" if is_baseline(name) else name: resolve(scheme)},
        probe=type(cfg.probe)(checkpoints=cfg.probe.checkpoints, reference_horizon=int(horizon)),
    )
