"""Which claims an experiment can test (:func:`claim_support`, what ``claims.tested`` is checked
against) and which runs its intervention table compares (:func:`intervention_arms`), from its
config alone: analysis-level choices, kept apart from :mod:`mgrl.runs` (training code) so that
changing them reruns no training job. No heavy imports: the Snakefile imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from mgrl.estimators import claim_role, exists_at
from mgrl.runs import (averaged_schemes, claim_roles, extra_estimators, intervention_schemes,
                       meta_update_identity, mixing_schemes, scheme_aliases)

if TYPE_CHECKING:
    from mgrl.config import ExperimentConfig

CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C5d", "C5'", "C1'", "E1", "E2")
"""The claims an experiment can test (:func:`claim_support`; what each decides:
:func:`mgrl.analysis.claims_table`)."""
MARGIN_CLAIMS = ("C4", "C5", "C5'", "E2")
"""The claims decided against the return margin delta (``claims.margin_fraction`` x the gamma
effect), so they need a fixed-gamma sweep."""


def intervention_arms(cfg: ExperimentConfig) -> dict[str, tuple[int, str, float]]:
    """Scheme -> its meta-update (:func:`meta_update_identity`) for the K-step scheme and every
    intervention scheme of the K-step kind at K_max (:func:`intervention_schemes`), in config
    order; empty without intervention schemes (what the intervention table compares)."""
    k = claim_roles(cfg).get("k_step")
    k_max = max(cfg.horizons)
    arms = [s for s in intervention_schemes(cfg) if exists_at(cfg.schemes[s], k_max)
            and claim_role(cfg.schemes[s].kind) == "k_step"]
    if k is None or not arms:
        return {}
    return {s: meta_update_identity(cfg, s) for s in cfg.schemes if s == k or s in arms}


def largest_m(candidates: Sequence[tuple[str, int]]) -> str | None:
    """A of C5' and C1' among (scheme, M) candidates: the one with the largest M, the first in
    the given order among equals; None without one."""
    return max(candidates, key=lambda c: c[1], default=(None, 0))[0]


def averaged_k_step(cfg: ExperimentConfig) -> str | None:
    """A of C5' and C1': among the averaged schemes (:func:`mgrl.runs.averaged_schemes`) of the
    K-step kind that run at K_max, the one with the largest M (:func:`largest_m`, config order)."""
    k_max = max(cfg.horizons)
    return largest_m([(s, meta_update_identity(cfg, s)[0]) for s in averaged_schemes(cfg)
                      if claim_role(cfg.schemes[s].kind) == "k_step"
                      and exists_at(cfg.schemes[s], k_max)])


def claim_support(cfg: ExperimentConfig, sensitivity_gammas: Sequence[float] = ()) -> dict:
    """Claim (:data:`CLAIMS`) -> None if the experiment can test it, else why not: what its
    horizons, schemes (by role and kind, :func:`mgrl.runs.claim_roles`, and where each runs) and
    fixed-gamma runs (the a2c baseline at ``agent.gamma_init`` and ``sensitivity_gammas``)
    provide. A claim it cannot test gets no row in its claims table, and naming it in
    ``claims.tested`` is an error."""
    roles = claim_roles(cfg)
    k = roles.get("k_step")
    k_min, k_max = min(cfg.horizons), max(cfg.horizons)
    aliases = scheme_aliases(cfg)

    def runs_at(scheme: str | None, horizon: int) -> bool:
        return scheme is not None and exists_at(cfg.schemes[scheme], horizon)

    fixed = {float(cfg.agent.gamma_init), *(float(g) for g in sensitivity_gammas)}
    margin = None if len(fixed) > 1 else ("its return margin is a fraction of the gamma effect, "
                                          "and only one fixed gamma is trained (set "
                                          "sensitivity.gammas)")
    no_k = "no scheme of the K-step kind (last) at K_max" if k is None or not runs_at(k, k_max) \
        else None
    mixing = [s for s in mixing_schemes(cfg) if s != k and runs_at(s, k_max)
              and aliases.get((k_max, s)) != k]
    top = averaged_k_step(cfg)
    extra = [s for s in extra_estimators(cfg) if runs_at(s, k_max)]
    bases = [roles[r] for r in ("k_step", "mixing") if r in roles and roles[r] not in extra
             and runs_at(roles[r], k_max)]
    why = {
        "C1": no_k or ("a single horizon: nothing to compare" if k_min == k_max
                       else None if runs_at(k, k_min) else "the K-step scheme does not run at K_min"),
        "C3": no_k or (None if mixing else "no mixing scheme beside the K-step one at K_max"),
        "C5": no_k or ("K_max = 1" if k_max == 1 else None if runs_at(k, 1)
                       else "the K-step scheme does not run at K = 1"),
        "C5'": no_k or (None if top else "no scheme of the K-step kind averages more samples at "
                                         "K_max"),
        "E1": ("no extra estimator (bmg, or another outer critic) at K_max" if not extra
               else None if bases else "no K-step or mixing scheme to compare with at K_max"),
    }
    why["C2"] = why["C1"]
    why["C4"] = why["C3"] or margin
    why["C5d"] = why["C5"]
    why["C5"] = why["C5"] or margin
    why["C1'"] = why["C5'"] or ("K_max = 1" if k_max == 1 else None if runs_at(top, 1)
                                else f"the averaged scheme {top} does not run at K = 1")
    why["C5'"] = why["C5'"] or margin
    why["E2"] = why["E1"] or margin
    return {claim: why[claim] for claim in CLAIMS}


def claimed_schemes(cfg: ExperimentConfig) -> list[str]:
    """The schemes the claims table compares, in config order: all but the intervention's
    controls (schemes with another meta-optimiser or rate: the intervention table compares them)."""
    controls = set(intervention_schemes(cfg)) - set(averaged_schemes(cfg))
    return [s for s in cfg.schemes if s not in controls]
