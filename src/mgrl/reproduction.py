"""Our runs against the authors' published per-run curves, update for update.

The outer-value-function paper (Bonnet, Midgley and Laterre 2022; instadeepai/outer-value-function-
meta-rl @ eda5463) publishes one CSV per run and metric under ``snake/data/<agent>_<metric>/``,
rows ``iteration, time, value``, one point every 146 inner updates (10 runs per agent):

    metric   their file                                   ours (training Parquet)
    return   eval_episode_reward_determinist_policy (a2c)  eval/return_greedy
             eval_episode_reward_stochastic_policy (MG, MG + outer critic, BMG, BMG + oc)
                                                           eval/return_sampled
    gamma    train_mean_gamma: the gamma of the epoch's     meta/gamma_mean
             updates, averaged over the epoch

:func:`read_authors_data` turns that folder into one long table; ``python -m mgrl authors-runs``
writes it as the committed extract ``config/authors/snake_runs.csv.gz`` (their first logged point
carries the iteration 1 or 3 of their logger; it is the state before any update, iteration 0 here).

:func:`reproduction_table` compares, per agent, metric and update count u (``reproduction.updates``):
ours = each seed's value at inner_updates == u, theirs = each run's value at iteration u, and the
difference of means d = mean(ours) - mean(theirs) with a Welch 95% t-interval (our seeds and their
runs are independent runs: no pairing exists between them). The verdict (:func:`reproduction_rule`):
``reproduced`` when the CI contains 0 and lies inside [-m, m], ``differs`` when it lies entirely
beyond the margin, ``inconclusive`` otherwise. The margin m (:func:`margin`) is
a fraction of the effect the metric carries at that update: for gamma
``reproduction.gamma_margin_fraction`` x the authors' outer-critic effect (their MG + oc - MG, the
effect their paper reports), for the return ``reproduction.return_margin_fraction`` x gamma's own
effect on it in this experiment (the fixed-gamma A2C runs of the primary seeds, as the claims'
delta). Both are fixed by a rule stated before our runs; the first from their data alone.

:func:`gap_table` states the authors' central comparison on both sides: outer critic minus no outer
critic in gamma (MG + oc - MG, BMG + oc - BMG): ours paired by seed (the two schemes share each
seed's initialisation and key stream), theirs unpaired (Welch); the claim "oc above" holds when the
CI lies above 0 (:func:`mgrl.stats.directional_rule`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from mgrl.runs import is_baseline
from mgrl.stats import (HOLDS, CONTRADICTED, directional_rule, mean_ci, reproduction_rule,
                        verdict, welch_difference_ci)

AUTHORS_AGENTS = {"a2c": "a2c", "mgrl": "mg", "mgrl_outer_critic": "mg_oc", "bootstrap": "bmg",
                  "bootstrap_outer_critic": "bmg_oc"}
"""The authors' agent folder names -> the scheme names of config/authors_snake.yaml."""
POLICY_OF_FILE = {"determinist_policy": "greedy", "stochastic_policy": "sampled"}
OUR_COLUMN = {("return", "greedy"): "eval/return_greedy", ("return", "sampled"): "eval/return_sampled",
              ("gamma", ""): "meta/gamma_mean"}
"""(metric, policy) -> our training column measuring what the authors' file logs."""
GAPS = (("mg_oc", "mg"), ("bmg_oc", "bmg"))
"""(with outer critic, without): the authors' comparison, in gamma."""
VERDICT_NAMES = {HOLDS: "reproduced", CONTRADICTED: "differs"}
EXTRACT_COLUMNS = ["agent", "metric", "policy", "run", "iteration", "value"]
EPOCH_UPDATES = 146
"""Inner updates between two of the authors' logged points (snake_train.py)."""


def read_authors_data(data_dir: str | Path) -> pd.DataFrame:
    """Every logged return and gamma point of ``data_dir`` (their ``snake/data``), long format
    :data:`EXTRACT_COLUMNS`: agent (our scheme name), metric, policy (greedy | sampled for returns,
    '' for gamma), run (the file's run id), iteration (inner updates; the first point is 0), value."""
    data_dir = Path(data_dir)
    frames = []
    for folder, agent in AUTHORS_AGENTS.items():
        for metric in ("return", "gamma"):
            for path in sorted((data_dir / f"{folder}_{metric}").glob("*.csv")):
                policy = next((p for f, p in POLICY_OF_FILE.items() if f in path.name), "")
                run = pd.read_csv(path, header=None, names=["iteration", "time", "value"])
                run = run.sort_values("iteration").reset_index(drop=True)
                later = run["iteration"].iloc[1:]
                if run["iteration"].iloc[0] not in (1, 3) or (later % EPOCH_UPDATES).any():
                    raise ValueError(f"'{path}': expected a first point at iteration 1 or 3 and "
                                     f"then multiples of {EPOCH_UPDATES}")
                run.loc[0, "iteration"] = 0  # their logger's first point: the state before training
                frames.append(run.assign(agent=agent, metric=metric, policy=policy,
                                         run=path.name.split("__")[0]))
    if not frames:
        raise FileNotFoundError(f"no <agent>_return/*.csv or <agent>_gamma/*.csv files under "
                                f"'{data_dir}' (expected the repository's snake/data folder)")
    out = pd.concat(frames, ignore_index=True)
    out["iteration"] = out["iteration"].astype(int)
    return out[EXTRACT_COLUMNS]


def load_authors_runs(path: str | Path) -> pd.DataFrame:
    """The extract written by ``python -m mgrl authors-runs`` (a ValueError names a bad file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reproduction.authors_runs: no file '{path}'")
    runs = pd.read_csv(path, keep_default_na=False, dtype={"policy": str, "run": str})
    missing = set(EXTRACT_COLUMNS) - set(runs.columns)
    if missing:
        raise ValueError(f"'{path}' lacks the columns {sorted(missing)} of an authors-runs extract")
    return runs


def _ours(training: pd.DataFrame, scheme: str, column: str, updates: int) -> pd.Series:
    """Each seed's ``column`` at inner_updates == updates (K = 1 runs), indexed by seed."""
    rows = training[(training["scheme"] == scheme) & (training["horizon"] == 1)
                    & (training["inner_updates"] == updates)]
    return rows.set_index("seed")[column].astype(float).sort_index()


def _theirs(authors: pd.DataFrame, agent: str, metric: str, updates: int) -> pd.DataFrame:
    return authors[(authors["agent"] == agent) & (authors["metric"] == metric)
                   & (authors["iteration"] == updates)]


def margin(authors: pd.DataFrame, training: pd.DataFrame, metric: str, updates: int,
           fraction: float) -> tuple[float, str]:
    """The margin m of ``metric`` at ``updates`` and its derivation in words: ``fraction`` x the
    effect that metric carries at that update count.

    * gamma: the outer critic's effect on gamma in the authors' runs, |mean MG + oc - mean MG|
      (the effect their paper reports);
    * return: gamma's own effect on the return in this experiment, max - min over the fixed-gamma
      A2C runs of ``training`` (the baseline and the sensitivity sweep, primary seeds) of their
      mean greedy evaluation return (as :func:`mgrl.analysis.gamma_effect` for the claims).
    NaN (nothing is then ``reproduced``) when the runs it needs are missing."""
    if metric == "gamma":
        means = _theirs_all(authors, "gamma", updates).groupby("agent")["value"].mean()
        if not {"mg", "mg_oc"} <= set(means.index):
            return np.nan, f"no authors' mg and mg_oc gamma at {updates} updates"
        effect = abs(float(means["mg_oc"] - means["mg"]))
        return fraction * effect, (f"m = {fraction:g} x the authors' outer-critic effect on gamma "
                                   f"|{means['mg_oc']:.3f} - {means['mg']:.3f}| = "
                                   f"{fraction * effect:.3g}")
    fixed = training[training["scheme"].map(is_baseline) & (training["inner_updates"] == updates)]
    column = OUR_COLUMN[("return", "greedy")]
    by_gamma = (fixed.groupby("meta/gamma")[column].mean().dropna()
                if {"meta/gamma", column} <= set(fixed.columns) else pd.Series(dtype=float))
    if len(by_gamma) < 2:
        return np.nan, f"no fixed-gamma sweep at {updates} updates: gamma's effect is unknown"
    top, bottom = by_gamma.idxmax(), by_gamma.idxmin()
    effect = float(by_gamma[top] - by_gamma[bottom])
    return fraction * effect, (f"m = {fraction:g} x gamma's effect on the greedy return here "
                               f"{effect:.3g} (fixed-gamma a2c {by_gamma[top]:.2f} at gamma "
                               f"{top:.3g} - {by_gamma[bottom]:.2f} at gamma {bottom:.3g}, primary "
                               f"seeds) = {fraction * effect:.3g}")


def _theirs_all(authors: pd.DataFrame, metric: str, updates: int) -> pd.DataFrame:
    return authors[(authors["metric"] == metric) & (authors["iteration"] == updates)]


def reproduction_table(training: pd.DataFrame, authors: pd.DataFrame, updates: Sequence[int],
                       fractions: dict[str, float], schemes: Sequence[str],
                       margin_training: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (agent, metric, update count) that both sides have: see the module docstring.
    ``fractions``: metric (return, gamma) -> its margin fraction (:func:`margin`);
    ``margin_training``: the primary seeds' training, whose fixed-gamma runs fix the return margin
    of both seed sets (default ``training``)."""
    margin_training = training if margin_training is None else margin_training
    rows = []
    for u in updates:
        for metric in ("return", "gamma"):
            m, derivation = margin(authors, margin_training, metric, u, fractions[metric])
            rule = reproduction_rule(m)
            for agent in AUTHORS_AGENTS.values():
                theirs = _theirs(authors, agent, metric, u)
                if agent not in schemes or theirs.empty or (agent == "a2c" and metric == "gamma"):
                    continue  # a2c's gamma is fixed on both sides: nothing to compare
                (policy,) = set(theirs["policy"])  # one file kind per agent and metric
                ours = _ours(training, agent, OUR_COLUMN[(metric, policy)], u)
                if ours.dropna().empty:
                    continue
                o_mean, o_lo, o_hi, n = mean_ci(ours.to_numpy())
                t_mean, t_lo, t_hi, n_runs = mean_ci(theirs["value"].to_numpy())
                d, d_lo, d_hi = welch_difference_ci(ours.to_numpy(), theirs["value"].to_numpy())
                rows.append({"agent": agent, "metric": metric, "policy": policy or "-",
                             "updates": int(u), "ours": o_mean, "ours_lo": o_lo, "ours_hi": o_hi,
                             "seeds": n, "authors": t_mean, "authors_lo": t_lo,
                             "authors_hi": t_hi, "runs": n_runs, "difference": d,
                             "difference_lo": d_lo, "difference_hi": d_hi, "margin": m,
                             "margin_derivation": derivation, "criterion": rule.text,
                             "verdict": VERDICT_NAMES.get(verdict(rule, d_lo, d_hi),
                                                          "inconclusive")})
    return pd.DataFrame(rows)


def gap_table(training: pd.DataFrame, authors: pd.DataFrame, updates: Sequence[int],
              schemes: Sequence[str]) -> pd.DataFrame:
    """Per (with, without) outer critic pair of :data:`GAPS` and update count: the gamma gap, ours
    paired by seed, theirs Welch; verdict of "with is above without" on each side."""
    rule = directional_rule(0.0, "greater")
    rows = []
    for u in updates:
        for with_oc, without in GAPS:
            if with_oc not in schemes or without not in schemes:
                continue
            a = _ours(training, with_oc, OUR_COLUMN[("gamma", "")], u)
            b = _ours(training, without, OUR_COLUMN[("gamma", "")], u)
            paired = (a - b).dropna()
            if paired.empty:
                continue
            o, o_lo, o_hi, n = mean_ci(paired.to_numpy())
            ta = _theirs(authors, with_oc, "gamma", u)["value"].to_numpy()
            tb = _theirs(authors, without, "gamma", u)["value"].to_numpy()
            t, t_lo, t_hi = welch_difference_ci(ta, tb) if len(ta) and len(tb) else (np.nan,) * 3
            rows.append({"gap": f"{with_oc} - {without}", "metric": "gamma", "updates": int(u),
                         "ours": o, "ours_lo": o_lo, "ours_hi": o_hi, "seeds": n,
                         "ours_verdict": verdict(rule, o_lo, o_hi), "authors": t,
                         "authors_lo": t_lo, "authors_hi": t_hi,
                         "authors_verdict": verdict(rule, t_lo, t_hi), "criterion": rule.text})
    return pd.DataFrame(rows)


def _ci(mean: float, lo: float, hi: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "-"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def reproduction_markdown(table: pd.DataFrame, gaps: pd.DataFrame) -> str:
    """Both tables as Markdown, with the verdict rule and each margin's derivation."""
    if table.empty:
        return ("No comparison: no scheme of this experiment was trained at the authors' update "
                "counts under their agents' names (a2c, mg, mg_oc, bmg, bmg_oc).\n")
    lines = ["| agent | metric | updates | ours (seeds) | authors (runs) | ours - authors | "
             "margin m | verdict |", "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        digits = 1 if r.metric == "return" else 3
        metric = f"return ({r.policy})" if r.metric == "return" else r.metric
        lines.append(f"| {r.agent} | {metric} | {r.updates} | "
                     f"{_ci(r.ours, r.ours_lo, r.ours_hi, digits)} ({r.seeds}) | "
                     f"{_ci(r.authors, r.authors_lo, r.authors_hi, digits)} ({r.runs}) | "
                     f"{_ci(r.difference, r.difference_lo, r.difference_hi, digits + 1)} | "
                     f"{r.margin:.{digits + 1}f} | {r.verdict} |")
    lines += ["", f"Verdict on the 95% CI of ours - authors (Welch): {table['criterion'].iloc[0]}. "
              "Margins:"]
    for (metric, u), d in table.groupby(["metric", "updates"])["margin_derivation"].first().items():
        lines.append(f"- {metric} at {u} updates: {d}")
    if not gaps.empty:
        lines += ["", "| gamma gap | updates | ours, paired by seed (seeds) | verdict | authors "
                  "(Welch) | verdict |", "|---|---|---|---|---|---|"]
        for g in gaps.itertuples():
            lines.append(f"| {g.gap} | {g.updates} | {_ci(g.ours, g.ours_lo, g.ours_hi, 3)} "
                         f"({g.seeds}) | {g.ours_verdict} | "
                         f"{_ci(g.authors, g.authors_lo, g.authors_hi, 3)} | {g.authors_verdict} |")
        lines += ["", f"Gap verdict (the outer critic raises gamma): {gaps['criterion'].iloc[0]}."]
    return "\n".join(lines) + "\n"


def replicated_markdown(primary: pd.DataFrame, replicate: pd.DataFrame) -> str:
    """Each comparison's verdict on the primary and the replicate seeds, and whether they agree."""
    key = ["agent", "metric", "updates"]
    both = primary.merge(replicate, on=key, suffixes=("_primary", "_replicate"), how="outer")
    lines = ["| agent | metric | updates | ours - authors, primary seeds | verdict | replicate "
             "seeds | verdict | same verdict |", "|---|---|---|---|---|---|---|---|"]
    for r in both.itertuples():
        digits = 2 if r.metric == "return" else 4
        p = _ci(r.difference_primary, r.difference_lo_primary, r.difference_hi_primary, digits)
        q = _ci(r.difference_replicate, r.difference_lo_replicate, r.difference_hi_replicate, digits)
        one_set = pd.isna(r.verdict_primary) or pd.isna(r.verdict_replicate)
        same = "one seed set only" if one_set else ("yes" if r.verdict_primary == r.verdict_replicate
                                                    else "no")
        verdicts = ["-" if pd.isna(v) else v for v in (r.verdict_primary, r.verdict_replicate)]
        lines.append(f"| {r.agent} | {r.metric} | {r.updates} | {p} | {verdicts[0]} | {q} | "
                     f"{verdicts[1]} | {same} |")
    return "\n".join(lines) + "\n"

