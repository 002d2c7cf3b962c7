"""Aggregation across seeds, the sensitivity table and the claims table (C1-C5), from the Parquet data;
the replication table (the claims of two disjoint seed sets side by side).

Units of replication: a seed is one independent training run (and one independent a2c run whose
saved states are probed), so every CI here is over seeds. Statistics of a seed's probed states
(several checkpoints of the same run, not independent) are first averaged within the seed: the
arithmetic mean for differences, cosines and the debiased bias, the mean log for positive
quantities (variances, SNR, errors, their ratios: a geometric mean). Intervals come from
:mod:`mgrl.stats` and respect their quantity's range (log scale for positive ones, atanh scale for
cosines, Student-t for differences).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # the t quantile stdtrit(df, q), without scipy.stats

from mgrl.config import ClaimsConfig
from mgrl.estimators import CLAIM_ROLES, claim_role
from mgrl.claim_support import CLAIMS, MARGIN_CLAIMS, largest_m
from mgrl.runs import is_baseline, sensitivity_gamma
from mgrl.stats import (INCONCLUSIVE, VerdictRule, atanh_mean_ci, cosine_difference_ci,
                        directional_rule, gain_rule, harm_rule,
                        half_width, log_mean_ci, log_ratio_ci, logit_mean_ci, mean_ci,
                        non_inferiority_rule, verdict)

FINAL_FRACTION = 0.25  # final return = mean over the last quarter of logging intervals
PAPER_VARIANCE_REDUCTION = 3.0  # [paper] "cuts the variance about 3x on Snake"

Aliases = Mapping[tuple[int, str], str]  # (K, scheme) -> scheme trained in its place
K_STEP, MIXING = CLAIM_ROLES  # the claims' roles (:func:`mgrl.runs.claim_roles`)
Roles = Mapping[str, str]  # role -> the scheme that fills it; a role no scheme fills is absent


def expand_aliases(frame: pd.DataFrame, aliases: Aliases) -> pd.DataFrame:
    """Copy the rows of each trained (K, scheme) to the schemes that alias it at that K
    (:func:`mgrl.runs.scheme_aliases`: one estimator, trained once), unless present."""
    present = set(zip(frame.horizon, frame.scheme))
    copies = [frame[(frame.horizon == horizon) & (frame.scheme == trained)].assign(scheme=alias)
              for (horizon, alias), trained in sorted(aliases.items())
              if (horizon, alias) not in present]
    return pd.concat([frame, *copies], ignore_index=True) if copies else frame


# ------------------------------------------------------------------------------ training data --


def final_returns(training: pd.DataFrame, fraction: float = FINAL_FRACTION) -> pd.DataFrame:
    """Per (horizon, scheme, seed): mean episode return and reward per step over the final intervals."""
    rows = []
    for (horizon, scheme, seed), g in training.groupby(["horizon", "scheme", "seed"]):
        g = g.sort_values("interval")
        tail = g.tail(max(1, int(np.ceil(fraction * len(g)))))
        rows.append({
            "horizon": horizon, "scheme": scheme, "seed": seed,
            "final_return": float(np.nanmean(tail["train/episode_return"])),
            "final_reward_per_step": float(np.nanmean(tail["train/reward_per_step"])),
            "final_gamma": float(g["meta/gamma"].iloc[-1]),
            "env_steps": int(g["env_steps"].iloc[-1]),
        })
    return pd.DataFrame(rows)


def learning_table(training: pd.DataFrame) -> pd.DataFrame:
    """Per (horizon, scheme): final return mean and 95% CI over seeds."""
    per_seed = final_returns(training)
    rows = []
    for (horizon, scheme), g in per_seed.groupby(["horizon", "scheme"]):
        m, lo, hi, n = mean_ci(g["final_return"])
        rm, rlo, rhi, _ = mean_ci(g["final_reward_per_step"])
        gm, glo, ghi, _ = logit_mean_ci(g["final_gamma"])
        rows.append({"horizon": horizon, "scheme": scheme, "seeds": n,
                     "final_return": m, "final_return_lo": lo, "final_return_hi": hi,
                     "reward_per_step": rm, "reward_per_step_lo": rlo, "reward_per_step_hi": rhi,
                     "final_gamma": gm, "final_gamma_lo": glo, "final_gamma_hi": ghi,
                     "env_steps": int(g["env_steps"].max())})
    return pd.DataFrame(rows).sort_values(["scheme", "horizon"]).reset_index(drop=True)


def sensitivity_table(training: pd.DataFrame, sensitivity: pd.DataFrame | None = None) -> pd.DataFrame:
    """Final return against gamma: one row per fixed-gamma run and per meta-learned (K, scheme).

    ``kind`` is ``fixed`` for the a2c baseline (gamma = its initial gamma) and the sensitivity runs
    ``a2c_gamma<g>``, ``meta-learned`` for the other runs (gamma = the final learned gamma). Final
    return and gamma: mean and 95% t-CI over seeds. Aliased schemes are not repeated (each trained
    run appears once).
    """
    frames = [f for f in (training, sensitivity) if f is not None and len(f)]
    runs = pd.concat(frames, ignore_index=True) if frames else training
    per_seed = final_returns(runs)
    rows = []
    for (horizon, scheme), g in per_seed.groupby(["horizon", "scheme"]):
        m, lo, hi, n = mean_ci(g["final_return"])
        gm, glo, ghi, _ = logit_mean_ci(g["final_gamma"])
        fixed = is_baseline(scheme)
        if fixed:  # exact, not the float32 round trip through the logit
            named = sensitivity_gamma(scheme)
            gm = named if named is not None else round(gm, 6)
            glo = ghi = gm
        rows.append({"kind": "fixed" if fixed else "meta-learned", "horizon": int(horizon),
                     "scheme": scheme, "gamma": gm, "gamma_lo": glo, "gamma_hi": ghi, "seeds": n,
                     "final_return": m, "final_return_lo": lo, "final_return_hi": hi,
                     "env_steps": int(g["env_steps"].max())})
    columns = ["kind", "horizon", "scheme", "gamma", "gamma_lo", "gamma_hi", "seeds", "final_return",
               "final_return_lo", "final_return_hi", "env_steps"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["kind", "gamma", "horizon", "scheme"]).reset_index(drop=True)


# A meta-update: (M samples, meta-optimiser, learning rate), :func:`mgrl.runs.meta_update_identity`.
MetaUpdates = Mapping[str, tuple[int, str, float]]


def intervention_pairs(arms: MetaUpdates) -> list[tuple[str, str]]:
    """(A, B) pairs of arms (scheme -> meta-update, in config order) compared in
    :func:`intervention_table`: every two arms with the same meta-optimiser, A the one with more
    samples (at equal M, the later one): averaging against one sample, a raised rate against the
    plain one, and averaging against the rate-matched single sample."""
    names = list(arms)
    pairs = []
    for i, b in enumerate(names):
        for a in names[i + 1:]:
            if arms[a][1] != arms[b][1]:
                continue
            pairs.append((b, a) if arms[b][0] > arms[a][0] else (a, b))
    return sorted(pairs, key=lambda p: (arms[p[0]][1], arms[p[0]][0], names.index(p[0]),
                                        names.index(p[1])))


def intervention_table(training: pd.DataFrame, horizon: int, arms: MetaUpdates) -> pd.DataFrame:
    """The variance intervention and its controls at K = ``horizon``: per pair (A, B) of
    :func:`intervention_pairs`: each arm's final gamma (mean and CI on the logit scale, inside
    (0, 1)); paired per seed, the difference A - B of the final gamma's logit (a log-odds ratio,
    unbounded) and of the final return (mean, 95% t-CI over seeds); and the ratio of their mean
    meta-steps on gamma's logit (``meta/step_gamma`` averaged over training; geometric mean over
    seeds, log-scale CI): whether a lift in gamma comes with a longer step (Adam's step grows with
    the SNR) or at an equal one. Unit: seeds (independent runs)."""
    finals = final_returns(training[training.horizon == horizon]).set_index(["scheme", "seed"])
    steps = (training[training.horizon == horizon].groupby(["scheme", "seed"])["meta/step_gamma"]
             .mean())
    rows = []
    for a, b in intervention_pairs(arms):
        if a not in finals.index.get_level_values(0) or b not in finals.index.get_level_values(0):
            continue
        row = {"horizon": int(horizon), "arm": a, "base": b}
        for name, (m, optimizer, rate) in (("arm", arms[a]), ("base", arms[b])):
            row.update({f"{name}_samples": m, f"{name}_optimizer": optimizer, f"{name}_rate": rate})
        for name, scheme in (("arm", a), ("base", b)):
            m, lo, hi, _ = logit_mean_ci(finals.loc[scheme, "final_gamma"])
            row.update({f"{name}_gamma": m, f"{name}_gamma_lo": lo, f"{name}_gamma_hi": hi})
        logit = np.log(finals["final_gamma"]) - np.log1p(-finals["final_gamma"])
        for values, label in ((logit, "gamma_logit"), (finals["final_return"], "return")):
            m, lo, hi, n = mean_ci((values.loc[a] - values.loc[b]).dropna())
            row.update({f"{label}_difference": m, f"{label}_lo": lo, f"{label}_hi": hi})
        m, lo, hi, _ = log_ratio_ci((steps.loc[a] / steps.loc[b]).dropna())
        row.update({"step_ratio": m, "step_ratio_lo": lo, "step_ratio_hi": hi, "seeds": n})
        rows.append(row)
    columns = ["horizon", "arm", "base", "arm_samples", "arm_optimizer", "arm_rate", "base_samples",
               "base_optimizer", "base_rate", "arm_gamma", "arm_gamma_lo", "arm_gamma_hi",
               "base_gamma", "base_gamma_lo", "base_gamma_hi", "gamma_logit_difference",
               "gamma_logit_lo", "gamma_logit_hi", "return_difference", "return_lo", "return_hi",
               "step_ratio", "step_ratio_lo", "step_ratio_hi", "seeds"]
    return pd.DataFrame(rows, columns=columns)


def intervention_markdown(table: pd.DataFrame) -> str:
    """The intervention table as Markdown: one line per pair, differences with their CIs."""
    lines = ["| K | arm - base | meta-updates (M, optimiser, rate) | final gamma, arm vs base | "
             "logit gamma difference | final return difference | mean step ratio | seeds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in table.itertuples():
        lines.append(
            f"| {r.horizon} | {r.arm} - {r.base} | {r.arm_samples}, {r.arm_optimizer}, "
            f"{r.arm_rate:g} vs {r.base_samples}, {r.base_optimizer}, {r.base_rate:g} | "
            f"{r.arm_gamma:.2f} [{r.arm_gamma_lo:.2f}, {r.arm_gamma_hi:.2f}] vs "
            f"{r.base_gamma:.2f} [{r.base_gamma_lo:.2f}, {r.base_gamma_hi:.2f}] | "
            f"{r.gamma_logit_difference:+.2f} [{r.gamma_logit_lo:+.2f}, {r.gamma_logit_hi:+.2f}] | "
            f"{r.return_difference:+.3f} [{r.return_lo:+.3f}, {r.return_hi:+.3f}] | "
            f"{r.step_ratio:.2f} [{r.step_ratio_lo:.2f}, {r.step_ratio_hi:.2f}] | {r.seeds} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ probe data --


def _cell(summary: pd.DataFrame, horizon: int, scheme: str) -> pd.DataFrame:
    return summary[(summary.horizon == horizon) & (summary.scheme == scheme)]


def seed_means(summary: pd.DataFrame, column: str, horizon: int, scheme: str,
               log: bool = False) -> pd.Series:
    """Per seed: the mean over its probed states of ``column`` at (K, scheme) (geometric mean if
    ``log``, for positive quantities). Index: seed."""
    g = _cell(summary, horizon, scheme)
    values = np.log(g[column].where(g[column] > 0)) if log else g[column]
    means = values.groupby(g["seed"]).mean()
    return np.exp(means) if log else means


def paired_seed_means(summary: pd.DataFrame, column: str, num: tuple[int, str],
                      den: tuple[int, str], how: str) -> pd.Series:
    """Per seed: the mean over its probed states of column(num) vs column(den) on the same state.

    ``how="ratio"``: the geometric mean of num / den (positive quantities); ``"difference"``: the
    mean of num - den. Index: seed; states present in only one cell are dropped.
    """
    keys = ["seed", "interval"]
    a = _cell(summary, *num).set_index(keys)[column]
    b = _cell(summary, *den).set_index(keys)[column]
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").reset_index()
    if how == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            joined["v"] = np.log(joined["a"] / joined["b"])
        joined = joined[np.isfinite(joined["v"])]
        return np.exp(joined.groupby("seed")["v"].mean())
    if how == "difference":
        return (joined["a"] - joined["b"]).groupby(joined["seed"]).mean()
    raise ValueError(f"how must be 'ratio' or 'difference', got {how!r}")


# Statistic -> interval kind: positive quantities on the log scale, cosines on the atanh scale,
# the direction variance (in [0, M / (M - 1)]) on the logit scale of its [0, 1] form.
ESTIMATOR_STATISTICS = {"step_cosine": "atanh", "variance_trace": "log", "snr": "log",
                        "cosine_to_reference": "atanh", "bias2_debiased": "t",
                        "direction_variance": "bounded"}


def estimator_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (horizon, scheme): each statistic's centre and 95% CI over seeds (per-seed means first).

    Positive statistics (variance trace, SNR): geometric mean, CI > 0; cosines (step cosine,
    raw-mean cosine): tanh of the mean atanh, CI inside (-1, 1); debiased bias: mean and t-CI (may be < 0); direction
    variance (in [0, M / (M - 1)]): the logit-scale CI of its [0, 1] form 1 - ||mean g/||g||||^2,
    scaled back, so the CI stays inside [0, M / (M - 1)].
    ``seeds``: units behind each CI; ``states``: probed states (seed x checkpoint).
    """
    rows = []
    for (horizon, scheme), g in summary.groupby(["horizon", "scheme"]):
        row = {"horizon": horizon, "scheme": scheme, "seeds": int(g["seed"].nunique()),
               "states": int(len(g))}
        for col, kind in ESTIMATOR_STATISTICS.items():
            if kind == "bounded":  # x (M - 1) / M = 1 - ||mean unit vector||^2 lies in [0, 1]
                bound = g["num_samples"] / (g["num_samples"] - 1)
                per_seed = (g[col] / bound).groupby(g["seed"]).mean()
                m, lo, hi = (v * float(bound.max()) for v in logit_mean_ci(per_seed)[:3])
            else:
                per_seed = seed_means(summary, col, horizon, scheme, log=kind == "log")
                ci = {"log": log_mean_ci, "atanh": atanh_mean_ci, "t": mean_ci}[kind]
                m, lo, hi, _ = ci(per_seed)
            row.update({col: m, f"{col}_lo": lo, f"{col}_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["scheme", "horizon"]).reset_index(drop=True)


def variance_reduction_table(summary: pd.DataFrame, schemes: Sequence[str],
                             roles: Roles) -> pd.DataFrame:
    """Per (K, mixing scheme): Var[k_step] / Var[scheme] on the same states, k_step the scheme of
    the K-step role (``roles``: :func:`mgrl.runs.claim_roles`; no rows without one); per seed the
    geometric mean over its states, then the geometric mean over seeds and its CI (log scale,
    > 0)."""
    base = roles.get(K_STEP)
    rows = []
    for horizon in sorted(summary.horizon.unique()) if base is not None else ():
        for scheme in schemes:
            if scheme == base:
                continue
            ratio = paired_seed_means(summary, "variance_trace", (horizon, base),
                                      (horizon, scheme), how="ratio")
            m, lo, hi, n = log_ratio_ci(ratio)
            rows.append({"horizon": horizon, "scheme": scheme, "reduction": m,
                         "reduction_lo": lo, "reduction_hi": hi, "seeds": n})
    return pd.DataFrame(rows, columns=["horizon", "scheme", "reduction", "reduction_lo",
                                       "reduction_hi", "seeds"])


# ---------------------------------------------------------------------------------- claims --

CLAIM_COLUMNS = ("claim", "statement", "measure", "value", "ci_lo", "ci_hi", "n", "unit", "verdict",
                 "boundary", "criterion", "power")
"""``boundary``: the value the claim's rule compares the CI with (0 or 1 for a direction, -delta
or +delta for a margin)."""

LOG2 = float(np.log(2.0))

Row = dict  # one claims-table row: CLAIM_COLUMNS -> value


def _log_half_width(lo: float, hi: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float((np.log(hi) - np.log(lo)) / 2.0)


def _resolves(half: float, target: float) -> str:
    if not np.isfinite(half):
        return "undefined (fewer than 2 seeds)"
    return "narrow enough" if half < target else "too wide"


def claim_rules(delta: float) -> dict[str, VerdictRule]:
    """The verdict rule of every claim (:mod:`mgrl.stats`), ``delta`` the return margin in fruits
    (:func:`gamma_effect` x ``claims.margin_fraction``): what :func:`claims_table` decides by."""
    return {"C1": directional_rule(0.0, "greater"), "C2": directional_rule(1.0, "greater"),
            "C3": directional_rule(1.0, "greater"), "C4": non_inferiority_rule(delta),
            "C5": harm_rule(delta), "C5d": directional_rule(0.0, "less"),
            "E1": directional_rule(1.0, "greater"), "E2": non_inferiority_rule(delta),
            "C5'": gain_rule(delta), "C1'": directional_rule(0.0, "greater")}


def rule_boundary(claim: str, delta: float) -> float:
    """The value :func:`claim_rules`' rule of ``claim`` compares the CI with."""
    return {"C2": 1.0, "C3": 1.0, "E1": 1.0, "C4": -delta, "C5": -delta, "E2": -delta,
            "C5'": delta}.get(claim, 0.0)


def gamma_effect(sensitivity: pd.DataFrame) -> tuple[float, str]:
    """The experiment's gamma effect: max - min over gamma of the fixed-gamma runs' mean final
    return (the ``fixed`` rows of :func:`sensitivity_table`: the a2c baseline and the
    ``a2c_gamma<g>`` runs), and its derivation as text. NaN with fewer than two fixed gammas."""
    fixed = sensitivity[sensitivity["kind"] == "fixed"] if len(sensitivity) else sensitivity
    if len(fixed) < 2:
        return float("nan"), "gamma effect undefined (fewer than two fixed gammas)"
    top = fixed.loc[fixed["final_return"].idxmax()]
    low = fixed.loc[fixed["final_return"].idxmin()]
    effect = float(top["final_return"] - low["final_return"])
    return effect, (f"gamma effect {effect:.3g} = fixed-gamma a2c final return {top['final_return']:.4g} "
                    f"at gamma {top['gamma']:g} - {low['final_return']:.4g} at gamma "
                    f"{low['gamma']:g}")


@dataclasses.dataclass(frozen=True, eq=False)
class ClaimContext:
    """What every claim reads (:meth:`build`): the probe summary and the per-seed final returns
    with aliases expanded, K_min and K_max, the return margin delta and its derivation, the
    verdict rules (:func:`claim_rules`), and which scheme fills each role (``roles``)."""

    summary: pd.DataFrame
    finals: pd.DataFrame  # final_returns of the training frame
    schemes: tuple[str, ...]
    roles: Roles
    aliases: Aliases
    extra_estimators: tuple[str, ...]
    averaged: Mapping[str, tuple[str, int]]
    k_min: int
    k_max: int
    delta: float
    delta_text: str
    rules: Mapping[str, VerdictRule]
    step_cosine_effect: float
    per_seed_states: int
    trained: frozenset  # the (K, scheme) pairs with final returns

    @classmethod
    def build(cls, training: pd.DataFrame, summary: pd.DataFrame, schemes: Sequence[str],
              roles: Roles, sensitivity: pd.DataFrame | None = None,
              margin_fraction: float = ClaimsConfig.margin_fraction,
              step_cosine_effect: float = ClaimsConfig.step_cosine_effect,
              aliases: Aliases | None = None, extra_estimators: Sequence[str] = (),
              averaged: Mapping[str, tuple[str, int]] | None = None) -> ClaimContext:
        aliases = dict(aliases or {})
        summary = expand_aliases(summary, aliases)
        finals = final_returns(expand_aliases(training, aliases))
        horizons = sorted(summary.horizon.unique())
        states = summary.groupby("seed")["interval"].nunique()
        effect, effect_text = gamma_effect(sensitivity if sensitivity is not None
                                           else pd.DataFrame())
        delta = float(margin_fraction * effect)
        delta_text = f"delta = {margin_fraction:g} x {effect_text} = {delta:.3g}"
        return cls(summary=summary, finals=finals, schemes=tuple(schemes), roles=dict(roles),
                   aliases=aliases, extra_estimators=tuple(extra_estimators),
                   averaged=dict(averaged or {}), k_min=horizons[0], k_max=horizons[-1],
                   delta=delta, delta_text=delta_text, rules=claim_rules(delta),
                   step_cosine_effect=step_cosine_effect,
                   per_seed_states=int(states.max()) if len(states) else 0,
                   trained=frozenset(zip(finals.horizon, finals.scheme)))

    @property
    def k_step(self) -> str | None:
        """The K-step scheme (role ``k_step``), None if no scheme fills the role."""
        return self.roles.get(K_STEP)

    def probe_unit(self, n: int) -> str:
        return (f"seeds (n={n}; each the mean over its {self.per_seed_states} probed states, "
                f"which share one run and are not independent)")

    @staticmethod
    def seed_unit(n: int) -> str:
        return f"seeds (n={n}; independent training runs)"

    def final_of(self, horizon: int, scheme: str) -> pd.Series:
        """Per seed (index): the final return of (K, scheme)."""
        g = self.finals[(self.finals.horizon == horizon) & (self.finals.scheme == scheme)]
        return g.set_index("seed")["final_return"]

    def mixing_compared(self) -> list[str]:
        """The schemes C3 and C4 compare with the K-step scheme, in ``schemes`` order: not the
        K-step scheme nor its alias at K_max (one estimator), no extra estimator, no averaged run;
        none without a K-step scheme."""
        k = self.k_step
        if k is None:
            return []
        return [s for s in self.schemes
                if s != k and self.aliases.get((self.k_max, s)) != k
                and s not in self.extra_estimators and s not in self.averaged]

    def extra_bases(self) -> list[str]:
        """What E1 and E2 compare each extra estimator with: the K-step and the mixing scheme,
        those that exist (among ``schemes``, not extra themselves)."""
        return [self.roles[r] for r in (K_STEP, MIXING) if r in self.roles
                and self.roles[r] in self.schemes and self.roles[r] not in self.extra_estimators]

    def averaged_k_step(self) -> str | None:
        """A, the averaged run of the K-step kind trained at K_max with the largest M
        (``averaged`` order breaks ties; as :func:`mgrl.claim_support.averaged_k_step`), when the
        K-step scheme was trained at K_max; else None."""
        k = self.k_step
        if k is None or (self.k_max, k) not in self.trained:
            return None
        return largest_m([(s, m) for s, (kind, m) in self.averaged.items()
                          if claim_role(kind) == K_STEP and (self.k_max, s) in self.trained])


def _row(ctx: ClaimContext, claim: str, statement: str, measure: str, value: float, lo: float,
         hi: float, n: int, unit: str, criterion: str, power: str) -> Row:
    """One row of ``claim``: its verdict by its rule on [lo, hi], and the rule's boundary."""
    values = (claim, statement, measure, value, lo, hi, n, unit, verdict(ctx.rules[claim], lo, hi),
              rule_boundary(claim, ctx.delta), criterion, power)
    return dict(zip(CLAIM_COLUMNS, values))


def _ratio_row(ctx: ClaimContext, claim: str, statement: str, num: tuple[int, str],
               den: tuple[int, str], column: str = "variance_trace", label: str = "Var") -> Row:
    """A per-state ratio column(num) / column(den), tested by its claim's rule on the log scale."""
    ratio = paired_seed_means(ctx.summary, column, num, den, how="ratio")
    m, lo, hi, n = log_ratio_ci(ratio)
    half = _log_half_width(lo, hi)
    rule = ctx.rules[claim]
    return _row(ctx, claim, statement,
                f"{label}[{num[1]}, K={num[0]}] / {label}[{den[1]}, K={den[0]}]",
                m, lo, hi, n, ctx.probe_unit(n), rule.text,
                f"half-width of log ratio {half:.3g} vs log 2 = {LOG2:.3g}: "
                f"{_resolves(half, LOG2)} to resolve a 2x factor")


def _difference_row(ctx: ClaimContext, claim: str, statement: str, measure: str, diff: pd.Series,
                    criterion: str, target_text: str = "to decide") -> Row:
    """A paired per-seed return difference ``diff`` (index: seed), tested by its claim's rule."""
    m, lo, hi, n = mean_ci(diff.dropna())
    half = half_width(lo, hi)
    power = (f"half-width {half:.3g} vs delta {ctx.delta:.3g}: {_resolves(half, ctx.delta)} "
             f"{target_text}" if np.isfinite(ctx.delta)
             else f"half-width {half:.3g} (no return margin to compare with: no gamma effect)")
    return _row(ctx, claim, statement, measure, m, lo, hi, n, ctx.seed_unit(n), criterion, power)


def _return_row(ctx: ClaimContext, claim: str, statement: str, scheme: str, base: str) -> Row:
    """Final return scheme - base at K_max, paired per seed: non-inferiority with margin delta
    (similar or higher: not lower by more than delta)."""
    return _difference_row(ctx, claim, statement,
                           f"final return {scheme} - {base} at K={ctx.k_max} (paired per seed)",
                           ctx.final_of(ctx.k_max, scheme) - ctx.final_of(ctx.k_max, base),
                           f"non-inferiority, {ctx.delta_text}: {ctx.rules[claim].text}")


def claim_c1(ctx: ClaimContext) -> list[Row]:
    """C1 less bias as K grows: d = step_cosine(k_step, K_max) - step_cosine(k_step, K_min) on the
    same state (the agreement of the expected Adam step with the reference's, :mod:`mgrl.stats`),
    per seed the mean over its states, CI on the atanh scale of d / 2 (inside (-2, 2)); holds if
    lower CI > 0 (K_max's expected step agrees better with the long-horizon one), contradicted if
    upper CI < 0. Power: half-width vs ``step_cosine_effect``. No row without a K-step scheme or
    with a single horizon (nothing to compare)."""
    k = ctx.k_step
    if k is None or ctx.k_min == ctx.k_max:
        return []
    diff = paired_seed_means(ctx.summary, "step_cosine", (ctx.k_max, k), (ctx.k_min, k),
                             how="difference")
    m, lo, hi, n = cosine_difference_ci(diff)
    half = half_width(lo, hi)
    k_ref = int(ctx.summary["reference_horizon"].max())
    effect = ctx.step_cosine_effect
    return [_row(ctx, "C1", "K-step meta-gradients are less biased as K grows",
                 f"step cosine to the reference (last, K_ref={k_ref}), {k} K={ctx.k_max} - "
                 f"K={ctx.k_min} (paired per state)",
                 m, lo, hi, n, ctx.probe_unit(n), ctx.rules["C1"].text,
                 f"half-width {half:.3g} vs effect {effect:.3g}: {_resolves(half, effect)} to "
                 f"resolve a rise of {effect:.3g}")]


def claim_c2(ctx: ClaimContext) -> list[Row]:
    """C2 variance grows with K: Var[k_step, K_max] / Var[k_step, K_min] (geometric mean; holds if
    lower CI > 1, contradicted if upper CI < 1). Power: half-width of the log ratio vs log 2. No
    row without a K-step scheme or with a single horizon."""
    k = ctx.k_step
    if k is None or ctx.k_min == ctx.k_max:
        return []
    return [_ratio_row(ctx, "C2", "the variance of K-step meta-gradients grows with K",
                       (ctx.k_max, k), (ctx.k_min, k))]


def claim_c3(ctx: ClaimContext) -> list[Row]:
    """C3 mixing cuts variance: Var[k_step, K_max] / Var[mix, K_max] per mixing scheme
    (:meth:`ClaimContext.mixing_compared`), as C2."""
    return [_ratio_row(ctx, "C3", f"mixing ({scheme}) cuts the variance of the K-step "
                                  f"meta-gradient (paper: about {PAPER_VARIANCE_REDUCTION:g}x)",
                       (ctx.k_max, ctx.k_step), (ctx.k_max, scheme))
            for scheme in ctx.mixing_compared()]


def claim_c4(ctx: ClaimContext) -> list[Row]:
    """C4 similar or higher return: d = final return mix - k_step at K_max, per seed, per mixing
    scheme (:meth:`ClaimContext.mixing_compared`); non-inferiority with margin delta =
    ``claims.margin_fraction`` x the gamma effect (:func:`gamma_effect`): holds if lower CI >
    -delta, contradicted if upper CI < -delta. Power: half-width vs delta."""
    return [_return_row(ctx, "C4", f"mixing ({scheme}) has similar or higher return than K-step",
                        scheme, ctx.k_step)
            for scheme in ctx.mixing_compared()]


def claim_c5(ctx: ClaimContext) -> list[Row]:
    """C5 the K-step variance hinders performance: d = final return k_step at K_max - at K = 1, per
    seed; a harm beyond the margin: holds if upper CI < -delta (worse by more than delta),
    contradicted if lower CI > -delta (any harm is smaller than the margin: negligible, even if
    significant). Power: half-width vs delta. No row unless K_max != 1 and the K-step scheme was
    trained at K = 1."""
    k = ctx.k_step
    if k is None or ctx.k_max == 1 or (1, k) not in ctx.trained:
        return []
    measure = f"final return {k} at K={ctx.k_max} - at K=1 (paired per seed)"
    diff = ctx.final_of(ctx.k_max, k) - ctx.final_of(1, k)
    return [_difference_row(ctx, "C5", "the K-step meta-gradient's variance hinders performance "
                                       "(by more than the margin)", measure, diff,
                            f"harm beyond the margin, {ctx.delta_text}: {ctx.rules['C5'].text}"),
            _difference_row(ctx, "C5d", "the K-step meta-gradient's variance lowers return "
                                        "(direction: any harm)", measure, diff,
                            f"directional: {ctx.rules['C5d'].text}", "to resolve a harm of delta")]


def claim_c5_prime(ctx: ClaimContext) -> list[Row]:
    """C5' cutting the K-step variance raises return (the causal form of C5): d = final return A -
    k_step at K_max, per seed, A = :meth:`ClaimContext.averaged_k_step`; holds if lower CI > delta
    (a gain beyond the margin), contradicted if upper CI < delta (any gain smaller than the
    margin), else inconclusive. No row without A."""
    top = ctx.averaged_k_step()
    if top is None:
        return []
    m_top = ctx.averaged[top][1]
    gain_text = ctx.rules["C5'"].text
    return [_difference_row(ctx, "C5'", "cutting the K-step meta-gradient's variance (averaging M "
                                        "samples) raises return",
                            f"final return {top} (M={m_top}) - {ctx.k_step} (M=1) at "
                            f"K={ctx.k_max} (paired per seed)",
                            ctx.final_of(ctx.k_max, top) - ctx.final_of(ctx.k_max, ctx.k_step),
                            f"gain beyond the margin, {ctx.delta_text}: {gain_text}")]


def claim_c1_prime(ctx: ClaimContext) -> list[Row]:
    """C1' with the variance of both cut M-fold, the K_max meta-gradient learns better (C1 by
    learning): d = final return A at K_max - A at K = 1, per seed, A =
    :meth:`ClaimContext.averaged_k_step`; holds if lower CI > 0, contradicted if upper CI < 0. No
    row without A, or unless K_max != 1 and A was trained at K = 1."""
    top = ctx.averaged_k_step()
    if top is None or ctx.k_max == 1 or (1, top) not in ctx.trained:
        return []
    m_top = ctx.averaged[top][1]
    return [_difference_row(ctx, "C1'", f"with both variances cut {m_top}-fold, the K-step "
                                        f"meta-gradient learns better than the 1-step",
                            f"final return {top} (M={m_top}) at K={ctx.k_max} - at K=1 (paired "
                            f"per seed)",
                            ctx.final_of(ctx.k_max, top) - ctx.final_of(1, top),
                            "directional: " + ctx.rules["C1'"].text,
                            "to resolve a difference of delta")]


def claim_e1(ctx: ClaimContext) -> list[Row]:
    """E1 higher signal-to-noise: SNR[extra] / SNR[base] on the same states (scale-free, so a KL
    gradient compares with a policy-gradient one), as C2 with null 1; per extra estimator and base
    (:meth:`ClaimContext.extra_bases`) at K_max."""
    return [_ratio_row(ctx, "E1", f"{scheme} has a higher signal-to-noise ratio than {base}",
                       (ctx.k_max, scheme), (ctx.k_max, base), column="snr", label="SNR")
            for scheme in ctx.extra_estimators for base in ctx.extra_bases()]


def claim_e2(ctx: ClaimContext) -> list[Row]:
    """E2 similar or higher return: final return extra - base at K_max, as C4; per extra estimator
    and base (:meth:`ClaimContext.extra_bases`)."""
    return [_return_row(ctx, "E2", f"{scheme} has similar or higher return than {base}", scheme,
                        base)
            for scheme in ctx.extra_estimators for base in ctx.extra_bases()]


def _interleave(*claims: list[Row]) -> list[Row]:
    """Rows of claims that compare the same pairs, pair by pair: C3, C4 of one scheme, then the
    next scheme's."""
    return [row for rows in zip(*claims, strict=True) for row in rows]


def claims_table(training: pd.DataFrame, summary: pd.DataFrame, schemes: Sequence[str],
                 roles: Roles, sensitivity: pd.DataFrame | None = None,
                 margin_fraction: float = ClaimsConfig.margin_fraction,
                 step_cosine_effect: float = ClaimsConfig.step_cosine_effect,
                 tested: Sequence[str] | None = None,
                 aliases: Aliases | None = None,
                 extra_estimators: Sequence[str] = (),
                 averaged: Mapping[str, tuple[str, int]] | None = None) -> pd.DataFrame:
    """The claims, each with the measured value, its 95% CI over seeds, a three-valued verdict, the
    criterion and the power (CI half-width next to the null or the margin); one function per claim,
    which says what it measures and decides:

    * C1 (:func:`claim_c1`): K-step meta-gradients are less biased as K grows;
    * C2 (:func:`claim_c2`): their variance grows with K;
    * C3, C4 (:func:`claim_c3`, :func:`claim_c4`): mixing cuts that variance, with similar or
      higher return (rows per mixing scheme, C3 then C4);
    * C5, C5d (:func:`claim_c5`): the K-step variance hinders performance, beyond the margin
      (C5) and in direction (C5d);
    * C5', C1' (:func:`claim_c5_prime`, :func:`claim_c1_prime`): the variance intervention;
    * E1, E2 (:func:`claim_e1`, :func:`claim_e2`): extra estimators against the K-step and mixing
      schemes (rows per (extra estimator, base), E1 then E2).

    Otherwise ``inconclusive``; the rules (:func:`claim_rules`) never both hold and contradict.
    The return margin delta of C4, C5, C5' and E2 is ``margin_fraction`` x the gamma effect of the
    fixed-gamma runs in ``sensitivity`` (:func:`sensitivity_table` rows; :func:`gamma_effect`);
    without two fixed gammas those claims get no row. ``tested`` (``claims.tested``; None: all):
    the claims the experiment tests; the others get no row, as a claim whose data are absent.

    ``roles`` (:func:`mgrl.runs.claim_roles`): the scheme of each role, ``k_step`` (the K-step
    meta-gradient of C1-C5, C5', C1') and ``mixing`` (the second base of E1, E2); a claim whose
    role is absent gets no row. Schemes that are aliases of the K-step scheme at K_max
    (``aliases``: :func:`mgrl.runs.scheme_aliases`) get no C3/C4 row: they are the same
    estimator. ``extra_estimators`` (``bmg`` schemes and schemes with their own outer critic) get
    no C3/C4 row; E1, E2 compare them instead. ``averaged`` (scheme -> (kind, M > 1),
    :func:`mgrl.runs.averaged_schemes`): runs whose meta-update averages M meta-gradient samples
    of the window (the variance intervention); they get no C3/C4 row, and the one of the K-step
    kind with the largest M (``averaged`` order breaks ties) is the A of C5' and C1'.
    """
    ctx = ClaimContext.build(training, summary, schemes, roles, sensitivity=sensitivity,
                             margin_fraction=margin_fraction,
                             step_cosine_effect=step_cosine_effect, aliases=aliases,
                             extra_estimators=extra_estimators, averaged=averaged)
    rows = [*claim_c1(ctx), *claim_c2(ctx), *_interleave(claim_c3(ctx), claim_c4(ctx)),
            *claim_c5(ctx), *claim_c5_prime(ctx), *claim_c1_prime(ctx),
            *_interleave(claim_e1(ctx), claim_e2(ctx))]
    wanted = set(CLAIMS if tested is None else tested)
    if not np.isfinite(ctx.delta):
        wanted -= set(MARGIN_CLAIMS)
    # A comparison whose cells were not trained or probed has no data: no row, not a nan.
    rows = [r for r in rows if r["claim"] in wanted and r["n"] > 0 and np.isfinite(r["value"])]
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))


def claims_markdown(claims: pd.DataFrame) -> str:
    """The claims table as Markdown (what README's Results section copies)."""
    lines = ["| claim | statement | measure | value | 95% CI | unit (n) | verdict | criterion | power |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in claims.itertuples():
        lines.append(f"| {r.claim} | {r.statement} | {r.measure} | {r.value:.3g} | "
                     f"[{r.ci_lo:.3g}, {r.ci_hi:.3g}] | {r.unit} | **{r.verdict}** | "
                     f"{r.criterion} | {r.power} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- replication --

REPLICATION_SETS = ("seeds_a", "seeds_b")  # the primary seeds, the replicate (disjoint) seeds
REPLICATION_FIELDS = ("value", "ci_lo", "ci_hi", "verdict")
MISSING = "missing"  # the verdict of a claim row that one seed set's table lacks


def replicated(verdict_a: str, verdict_b: str) -> str:
    """``yes``: both seed sets give the same decided verdict (holds or contradicted); ``no``: they
    differ (one decided and one inconclusive, or opposite); ``undecided``: both inconclusive."""
    if verdict_a != verdict_b:
        return "no"
    return "undecided" if verdict_a == INCONCLUSIVE else "yes"


def replication_table(primary: pd.DataFrame, replicate: pd.DataFrame,
                      seeds_a: Sequence[int] = (), seeds_b: Sequence[int] = ()) -> pd.DataFrame:
    """The claims tables of two disjoint seed sets side by side, one row per claim row.

    Rows are matched on (claim, measure), in the primary table's order (rows of the replicate only
    after them); columns claim, statement, measure, then ``seeds_a`` (the seed list, as text) and
    value/ci_lo/ci_hi/verdict with the suffix ``_seeds_a`` for the primary set, the same with
    ``_seeds_b`` for the replicate set, and ``replicated`` (:func:`replicated`). A row that one
    table lacks gets the verdict ``missing`` there, and so ``replicated`` = ``no``.
    """
    keys = ["claim", "measure"]
    sides = []
    for name, table in zip(REPLICATION_SETS, (primary, replicate)):
        if table.duplicated(keys).any():
            raise ValueError(f"{name}: more than one row per (claim, measure)")
        sides.append(table[keys + ["statement", *REPLICATION_FIELDS]].rename(
            columns={f: f"{f}_{name}" for f in ("statement", *REPLICATION_FIELDS)}))
    joined = sides[0].merge(sides[1], on=keys, how="outer", sort=False)
    order = {key: i for i, key in enumerate(zip(primary.claim, primary.measure))}
    joined["_order"] = [order.get(key, len(order)) for key in zip(joined.claim, joined.measure)]
    joined = joined.sort_values("_order", kind="stable").reset_index(drop=True)
    joined["statement"] = joined["statement_seeds_a"].fillna(joined["statement_seeds_b"])
    for name, seeds in zip(REPLICATION_SETS, (seeds_a, seeds_b)):
        joined[name] = " ".join(map(str, seeds))
        joined[f"verdict_{name}"] = joined[f"verdict_{name}"].fillna(MISSING)
    joined["replicated"] = [replicated(a, b) for a, b in
                            zip(joined["verdict_seeds_a"], joined["verdict_seeds_b"])]
    columns = ["claim", "statement", "measure"]
    for name in REPLICATION_SETS:
        columns += [name] + [f"{f}_{name}" for f in REPLICATION_FIELDS]
    return joined[columns + ["replicated"]]


def replication_markdown(table: pd.DataFrame) -> str:
    """The replication table as Markdown (as :func:`claims_markdown`): value, CI and verdict of each
    seed set, and whether the verdict replicated."""
    names = {name: (table[name].iloc[0] if len(table) else "") for name in REPLICATION_SETS}
    head = " | ".join(f"value (seeds {names[n]}) | 95% CI | verdict" for n in REPLICATION_SETS)
    lines = [f"| claim | statement | measure | {head} | replicated |",
             "| --- | --- | --- | " + " | ".join(["---"] * 6) + " | --- |"]

    def cells(r, name):
        value, lo, hi = (getattr(r, f"{f}_{name}") for f in ("value", "ci_lo", "ci_hi"))
        return f"{value:.3g} | [{lo:.3g}, {hi:.3g}] | **{getattr(r, f'verdict_{name}')}**"

    for r in table.itertuples():
        lines.append(f"| {r.claim} | {r.statement} | {r.measure} | {cells(r, 'seeds_a')} | "
                     f"{cells(r, 'seeds_b')} | {r.replicated} |")
    return "\n".join(lines) + "\n"


SEEDS_COLUMNS = ("claim", "measure", "delta", "sd_seeds_a", "n_seeds_a", "sd_seeds_b", "n_seeds_b",
                 "sd_pooled", "seeds_for_power")


def seed_sd(lo: float, hi: float, n: int, level: float = 0.95) -> float:
    """The between-seed SD behind a t-interval [lo, hi] of a mean over n seeds:
    half-width x sqrt(n) / t_{(1 + level) / 2, n - 1}."""
    return float((hi - lo) / 2.0 * np.sqrt(n) / stdtrit(n - 1, (1 + level) / 2))


def seeds_for_power(sd: float, delta: float, power: float = 0.8, level: float = 0.95,
                    most: int = 10_000) -> int:
    """The fewest seeds n whose paired t-interval decides a margin claim with probability
    ``power`` when the true difference is 0, i.e. lies delta from the margin's boundary:
    (t_{(1 + level)/2, n-1} + t_{power, n-1}) sd / sqrt(n) <= delta (the usual approximation to
    the noncentral-t power; slightly conservative). ``most`` if none below it."""
    if not (np.isfinite(sd) and np.isfinite(delta) and delta > 0):
        raise ValueError(f"seeds_for_power needs a finite sd and delta > 0, got {sd}, {delta}")
    for n in range(2, most):
        if (stdtrit(n - 1, (1 + level) / 2) + stdtrit(n - 1, power)) * sd / np.sqrt(n) <= delta:
            return n
    return most


def seeds_needed_table(primary: pd.DataFrame, replicate: pd.DataFrame,
                       power: float = 0.8) -> pd.DataFrame:
    """Prospective sample size of the margin claims (C4, C5, C5', E2) present in both seed sets'
    claims tables: each set's between-seed SD of the paired difference (:func:`seed_sd`, from its
    CI), pooled (weights n - 1), and the seeds that decide the claim with ``power`` at the margin
    delta (``-boundary``, ``+boundary`` for C5') when the true difference is 0
    (:func:`seeds_for_power`)."""
    keys = ["claim", "measure"]
    joined = primary.merge(replicate, on=keys, suffixes=("_a", "_b"))
    rows = []
    for r in joined[joined.claim.isin(MARGIN_CLAIMS)].itertuples():
        n_a, n_b = int(r.n_a), int(r.n_b)
        if min(n_a, n_b) < 2:  # no between-seed SD from a single seed
            continue
        sd_a, sd_b = (seed_sd(getattr(r, f"ci_lo_{x}"), getattr(r, f"ci_hi_{x}"),
                              int(getattr(r, f"n_{x}"))) for x in ("a", "b"))
        pooled = float(np.sqrt(((n_a - 1) * sd_a ** 2 + (n_b - 1) * sd_b ** 2) / (n_a + n_b - 2)))
        delta = abs(float(r.boundary_a))
        rows.append(dict(zip(SEEDS_COLUMNS, (r.claim, r.measure, delta, sd_a, n_a, sd_b, n_b,
                                              pooled, seeds_for_power(pooled, delta, power)))))
    return pd.DataFrame(rows, columns=list(SEEDS_COLUMNS))


def seeds_needed_markdown(table: pd.DataFrame, power: float = 0.8) -> str:
    lines = [f"| claim | measure | delta | between-seed SD (seeds a, n) | (seeds b, n) | pooled SD | "
             f"seeds for {power:.0%} power |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in table.itertuples():
        lines.append(f"| {r.claim} | {r.measure} | {r.delta:.3g} | {r.sd_seeds_a:.3g} ({r.n_seeds_a}) "
                     f"| {r.sd_seeds_b:.3g} ({r.n_seeds_b}) | {r.sd_pooled:.3g} | "
                     f"{r.seeds_for_power} |")
    return "\n".join(lines) + "\n"


def margin_sweep(claims: pd.DataFrame, effect: float, fractions: Sequence[float]) -> pd.DataFrame:
    """The verdicts of the margin claims (C4, C5, C5', E2) of a claims table at other margin
    fractions: delta = fraction x ``effect`` (the gamma effect, :func:`gamma_effect`), each row's CI
    decided by its claim's rule at that delta. One row per claim row, a column per fraction."""
    rows = []
    for r in claims[claims.claim.isin(MARGIN_CLAIMS)].itertuples():
        row = {"claim": r.claim, "measure": r.measure, "value": r.value, "ci_lo": r.ci_lo,
               "ci_hi": r.ci_hi}
        for fraction in fractions:
            row[f"{fraction:g}"] = verdict(claim_rules(fraction * effect)[r.claim], r.ci_lo, r.ci_hi)
        rows.append(row)
    return pd.DataFrame(rows, columns=["claim", "measure", "value", "ci_lo", "ci_hi",
                                       *(f"{f:g}" for f in fractions)])


def table_html(table: pd.DataFrame, title: str, note: str = "") -> str:
    """A small standalone HTML page of ``table`` (what the Snakemake report embeds)."""
    body = table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0,
                         classes="mgrl-table")
    style = ("body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse} "
             "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}")
    paragraph = f"<p>{note}</p>" if note else ""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{style}</style></head><body><h3>{title}</h3>{paragraph}{body}</body></html>\n")
