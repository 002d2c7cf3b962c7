"""Meta-gradient estimators: one module per kind, behind one small interface.

A *scheme* (config ``schemes.<name>``, a :class:`SchemeConfig`) names an estimator of one *kind*.
Each kind is a module of this package that defines what the kind computes, and nothing else does:

==================  ==========================================================================
``KIND``            its name in configs (``kind: <KIND>``)
``SETTINGS``        its own settings: name -> (type, default, description, constraints), the
                    :class:`SchemeConfig` fields only this kind takes
``validate``        (scheme, horizons) -> [(field, message)]: its own settings' problems
``resolve``         scheme -> scheme with every default filled in (optional; default: as is)
``exists_at``       (scheme, K) -> whether it is defined at K (optional; default: every K)
``weights``         (scheme, K) -> w_1..w_K, a *weighting* of the window's outer losses
                    (:mod:`mgrl.estimators.weighting`), or
``estimator``       scheme -> :class:`Estimator`, for a kind that is not a weighting (``bmg``)
==================  ==========================================================================

Weighting kinds (``last``, ``uniform``, ``lambda``, ``custom``) share one meta-loss,
``sum_k w_k l_k`` (:func:`mgrl.estimators.weighting.meta_loss`): adding one is a module with
``KIND``, ``SETTINGS`` and ``weights`` (docs/estimators.md). Any kind may take its outer advantages
A' from an outer critic (:mod:`mgrl.estimators.outer_critic`).

The kinds are found by scanning this package (:data:`KINDS`). No heavy imports at module level:
the Snakefile imports this package to build the job list; the modules import jax inside the
functions that are traced.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from types import ModuleType
from typing import Any, Callable, NamedTuple, Sequence

from mgrl.settings import META_OPTIMIZERS, ConfigError, setting

_SHARED_MODULES = ("weighting", "outer_critic")  # helpers of the kinds, not kinds
CLAIM_ROLES = ("k_step", "mixing")
"""What a kind may be to the claims (its module's optional ``CLAIM_ROLE``): ``k_step`` the K-step
meta-gradient the claims measure (C1, C2, C5; C3, C4 compare mixing with it), ``mixing`` the
mixing base the extra estimators are compared with (E1, E2); :func:`mgrl.runs.claim_roles`."""


class Estimator(NamedTuple):
    """What the agent calls to run one scheme's estimator (all pure; jax inside the callables).

    ``meta_loss(agent, eta, state, key, weights, outer_advantages, final_outer, target)`` returns
    (loss, (params, inner opt state, env carry, rollout, aux)) after the window (see
    :func:`mgrl.estimators.weighting.meta_loss`); ``init_state(agent, params)`` the estimator's
    own persistent state (``AgentState.bootstrap_opt_state``; ``()`` for none);
    ``kept_updates`` the inner updates per window the agent keeps beyond K;
    ``lookahead_rollouts`` rollouts per window that feed only the meta-gradient.
    """

    kind: str
    meta_loss: Callable[..., Any]
    init_state: Callable[..., Any]
    kept_updates: int
    lookahead_rollouts: int
    is_weighting: bool


def no_state(agent, params) -> tuple:
    """``Estimator.init_state`` of an estimator that keeps no state of its own."""
    return ()


def _discover() -> dict[str, ModuleType]:
    kinds = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name in _SHARED_MODULES:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if module.KIND in kinds:
            raise RuntimeError(f"kind {module.KIND!r} is defined by {kinds[module.KIND].__name__} "
                               f"and {module.__name__}")
        role = getattr(module, "CLAIM_ROLE", None)
        if role is not None and role not in CLAIM_ROLES:
            raise RuntimeError(f"{module.__name__}.CLAIM_ROLE {role!r} is not one of {CLAIM_ROLES}")
        kinds[module.KIND] = module
    return kinds


KINDS: dict[str, ModuleType] = _discover()
"""Kind name -> its module, for every kind module of this package."""

def _kind_fields() -> dict[str, str]:
    """Field -> the kind that takes it (a field taken by two kinds would be ambiguous)."""
    takes = {}
    for kind, module in KINDS.items():
        for field in module.SETTINGS:
            if field in takes:
                raise RuntimeError(f"{field} is taken by kinds {takes[field]} and {kind}")
            takes[field] = kind
    return takes


def _scheme_config() -> type:
    """The settings class of a scheme: ``kind``, every kind's own ``SETTINGS`` (``<kind> kind
    only``; None when not set), then the settings any kind takes."""
    fields = [("kind", str, setting("last", "what the estimator computes (one module of "
                                            "mgrl.estimators)", enum=list(KINDS))),
              ("_", dataclasses.KW_ONLY)]  # every other field by name: kinds may come and go
    for kind, module in KINDS.items():
        for name, (hint, default, doc, constraints) in module.SETTINGS.items():
            fields.append((name, hint, setting(default, f"{kind} kind only: {doc}", **constraints)))
    fields += [
        ("outer_critic", bool | None, setting(None, "overrides agent.outer_critic for this "
                                                    "scheme's runs and probes")),
        ("meta_samples", int | None, setting(None, "overrides meta.samples for this scheme's runs "
                                                   "(a probe sample is one meta-gradient either "
                                                   "way)", minimum=1)),
        ("horizons", tuple[int, ...] | None, setting(None, "the K values (among the experiment's "
                                                         "horizons) this scheme runs at; null: all "
                                                         "its kind defines", minItems=1,
                                                         uniqueItems=True, items={"minimum": 1})),
        ("meta_learning_rate", float | None, setting(None, "overrides meta.learning_rate for this "
                                                           "scheme's runs", exclusiveMinimum=0)),
        ("meta_optimizer", str | None, setting(None, "overrides meta.optimizer for this scheme's "
                                                     "runs", enum=list(META_OPTIMIZERS))),
    ]
    cls = dataclasses.make_dataclass("SchemeConfig", fields, frozen=True)
    cls.__module__ = __name__
    cls.__doc__ = ("One estimator (config ``schemes.<name>``): its kind and the kind's own "
                   "settings (each kind module's ``SETTINGS``).")
    return cls


SchemeConfig = _scheme_config()


def claim_role(kind: str) -> str | None:
    """The claim role (:data:`CLAIM_ROLES`) a scheme of ``kind`` fills: its module's
    ``CLAIM_ROLE``, or None."""
    return getattr(KINDS.get(kind), "CLAIM_ROLE", None)


def kind_module(scheme: SchemeConfig) -> ModuleType:
    if scheme.kind not in KINDS:  # rejected at load time by the enum
        raise ConfigError("schemes.kind", f"unknown kind '{scheme.kind}' (known: {list(KINDS)})")
    return KINDS[scheme.kind]


def is_weighting(scheme: SchemeConfig) -> bool:
    """Whether the scheme's meta-loss is a weighting sum_k w_k l_k of the window's outer losses."""
    return hasattr(kind_module(scheme), "weights")


def validate_scheme(name: str, scheme: SchemeConfig, horizons: Sequence[int]) -> list[tuple[str, str]]:
    """(dotted key, message) of every kind-specific problem of scheme ``name`` (empty: valid).
    Value ranges are checked from the field constraints by mgrl.config."""
    key = f"schemes.{name}"
    outside = sorted(set(scheme.horizons or ()) - set(horizons))
    problems = [(f"{key}.horizons", f"{outside} are not among the experiment's horizons "
                                    f"{list(horizons)}")] if outside else []
    problems += [(f"{key}.{field}", f"only the {kind} kind takes {field} (kind is {scheme.kind})")
                for field, kind in _kind_fields().items()
                if scheme.kind != kind and getattr(scheme, field) is not None]
    if scheme.kind in KINDS:
        check = getattr(KINDS[scheme.kind], "validate", None)
        if check is not None:
            problems += [(f"{key}.{field}", message) for field, message in check(scheme, horizons)]
    return problems


def resolve(scheme: SchemeConfig) -> SchemeConfig:
    """The scheme with every default of its kind filled in: what a run's config (and so its hash)
    records, so that a changed default is a changed config."""
    fill = getattr(kind_module(scheme), "resolve", None)
    return scheme if fill is None else fill(scheme)


def exists_at(scheme: SchemeConfig, horizon: int) -> bool:
    """Whether ``scheme`` runs at K = ``horizon``: one of its ``horizons`` (if set) where its kind
    defines it (a custom scheme only at its own K)."""
    if scheme.horizons is not None and horizon not in scheme.horizons:
        return False
    defined = getattr(kind_module(scheme), "exists_at", None)
    return True if defined is None else bool(defined(scheme, horizon))


def scheme_weights(scheme: SchemeConfig, horizon: int) -> tuple[float, ...]:
    """Weights w_1..w_K of the outer losses at theta_1..theta_K; shape [K], sum 1. A kind that is
    not a weighting (bmg) has e_K: its runs log l_K and take the weights only for their shape."""
    if horizon < 1:
        raise ConfigError("horizons", f"K must be >= 1, got {horizon}")
    module = kind_module(scheme)
    if not hasattr(module, "weights"):
        return (0.0,) * (horizon - 1) + (1.0,)
    return tuple(float(w) for w in module.weights(scheme, horizon))


def sample_identity(scheme: SchemeConfig, horizon: int) -> tuple:
    """What one meta-gradient sample of the scheme at K computes, outer advantages aside: a
    weighting by its weights (rounded to 12 digits), any other kind by its resolved settings."""
    if is_weighting(scheme):
        return ("weighting", tuple(round(w, 12) for w in scheme_weights(scheme, horizon)))
    return (horizon,) + program_identity(scheme)


def program_identity(scheme: SchemeConfig | None) -> tuple | None:
    """What a compiled program depends on of a scheme: nothing for a weighting (its weights are
    a traced argument, so every weighting at one K shares a program; None), else the kind and its
    resolved settings."""
    if scheme is None or is_weighting(scheme):
        return None
    resolved = resolve(scheme)
    return (scheme.kind, tuple(getattr(resolved, f) for f in KINDS[scheme.kind].SETTINGS))


def estimator_of(scheme: SchemeConfig | None) -> Estimator:
    """The :class:`Estimator` the agent runs for ``scheme`` (None: a weighting, e.g. a2c)."""
    from mgrl.estimators import weighting

    if scheme is None or is_weighting(scheme):
        return weighting.ESTIMATOR
    return kind_module(scheme).estimator(resolve(scheme))
