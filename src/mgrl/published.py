"""The authors' published Snake runs beside this pipeline's: facts to compare with, not settings.

The outer-value-function paper's repository (instadeepai/outer-value-function-meta-rl) publishes
its per-run curves under ``snake/data/<agent>_<metric>/*.csv`` (one CSV per run, rows
``iteration, time, value``; one iteration = 512 environments x 5 steps = 2,560 environment steps,
10 runs per agent, 75M steps; their x-axis counts 2,560 steps per update for every agent, the inner
rollout only: their MG interacts twice that, their BMG three times. mgrl.reproduction compares by
update count instead):

    metric   what the authors logged                           ours (config/published.yaml)
    return   evaluation return of 512 fresh episodes: greedy  train/episode_return (sampling policy)
             for a2c, sampled for the four meta agents
    gamma    the meta-learned discount                         meta/gamma
    bias     mean outer-loss advantage A' (their bias measure)  meta/outer_advantage_mean

:func:`authors_summary` reduces them, per agent and metric, at two budgets: the authors' end
(each run's mean over its last 10 logged points, the convention of the issue that quotes them)
and a matched budget B (each run's mean over its logged points in the last quarter of [0, B], our
final-return convention; gamma and bias take the last point at or before B). Means and 95%
t-intervals over runs; gamma's interval on the logit scale. :func:`comparison_table` puts our
learning table beside them. ``python -m mgrl published`` runs both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mgrl.analysis import FINAL_FRACTION, final_returns
from mgrl.stats import logit_mean_ci, mean_ci

STEPS_PER_ITERATION = 512 * 5
AUTHORS_AGENTS = {"a2c": "a2c", "mgrl": "mg", "mgrl_outer_critic": "mg_oc", "bootstrap": "bmg",
                  "bootstrap_outer_critic": "bmg_oc"}
"""The authors' agent folder names -> this pipeline's scheme names in config/published.yaml."""
METRICS = ("return", "gamma", "bias")
END_POINTS = 10


def read_authors_runs(data_dir: str | Path) -> pd.DataFrame:
    """Every logged point of ``data_dir`` (the repository's ``snake/data``), long format:
    agent (our scheme name), metric, run (the file's run id), iteration, env_steps, value."""
    data_dir = Path(data_dir)
    frames = []
    for folder, scheme in AUTHORS_AGENTS.items():
        for metric in METRICS:
            for path in sorted((data_dir / f"{folder}_{metric}").glob("*.csv")):
                run = pd.read_csv(path, header=None, names=["iteration", "time", "value"])
                frames.append(run.assign(agent=scheme, metric=metric, run=path.name.split("__")[0]))
    if not frames:
        raise FileNotFoundError(f"no <agent>_<metric>/*.csv files under '{data_dir}' (expected the "
                                f"repository's snake/data folder)")
    runs = pd.concat(frames, ignore_index=True)
    runs["env_steps"] = runs["iteration"] * STEPS_PER_ITERATION
    return runs[["agent", "metric", "run", "iteration", "env_steps", "value"]]


def _per_run(points: pd.DataFrame, metric: str, budget: float | None) -> pd.Series:
    """One number per run: see the module docstring."""
    def one(run: pd.DataFrame) -> float:
        run = run.sort_values("env_steps")
        if budget is None:
            return float(run["value"].tail(END_POINTS).mean())
        before = run[run["env_steps"] <= budget]
        if metric == "return":
            tail = before[before["env_steps"] > (1 - FINAL_FRACTION) * budget]
            return float(tail["value"].mean())
        return float(before["value"].iloc[-1])
    return points.groupby("run").apply(one, include_groups=False)


def authors_summary(runs: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Per (agent, metric, budget): mean, 95% CI and number of runs, at ``budget`` environment
    steps and at the authors' end (budget column ``end``)."""
    rows = []
    for (agent, metric), points in runs.groupby(["agent", "metric"], sort=False):
        for label, at in ((str(int(budget)), budget), ("end", None)):
            values = _per_run(points, metric, at).dropna()
            interval = logit_mean_ci if metric == "gamma" else mean_ci
            mean, lo, hi, n = interval(values.to_numpy())
            rows.append({"agent": agent, "metric": metric, "budget": label,
                         "env_steps": int(at) if at else int(points["env_steps"].max()),
                         "mean": mean, "lo": lo, "hi": hi, "runs": n})
    return pd.DataFrame(rows)


def ours_summary(training: pd.DataFrame) -> pd.DataFrame:
    """Our runs at K = 1 in the same long format: final return (last quarter of intervals), final
    gamma, and the mean outer advantage over the last quarter of intervals."""
    training = training[training["horizon"] == 1]
    per_seed = final_returns(training).set_index(["scheme", "seed"])
    tails = []
    for (scheme, seed), g in training.groupby(["scheme", "seed"]):
        g = g.sort_values("interval")
        tail = g.tail(max(1, int(np.ceil(FINAL_FRACTION * len(g)))))
        tails.append({"scheme": scheme, "seed": seed,
                      "bias": float(np.nanmean(tail["meta/outer_advantage_mean"]))})
    bias = pd.DataFrame(tails).set_index(["scheme", "seed"])["bias"]
    rows = []
    for scheme, g in per_seed.groupby(level="scheme"):
        steps = int(training.loc[training["scheme"] == scheme, "env_steps"].max())
        for metric, values, interval in (("return", g["final_return"], mean_ci),
                                         ("gamma", g["final_gamma"], logit_mean_ci),
                                         ("bias", bias.loc[scheme], mean_ci)):
            mean, lo, hi, n = interval(np.asarray(values, float))
            rows.append({"agent": scheme, "metric": metric, "env_steps": steps, "mean": mean,
                         "lo": lo, "hi": hi, "runs": n})
    return pd.DataFrame(rows)


def _cell(row: pd.Series | None, digits: int) -> str:
    if row is None or not np.isfinite(row["mean"]):
        return "-"
    return f"{row['mean']:.{digits}f} [{row['lo']:.{digits}f}, {row['hi']:.{digits}f}]"


def comparison_table(authors: pd.DataFrame, ours: pd.DataFrame) -> str:
    """Markdown: per agent and metric, ours, the authors' at our budget and at their end."""
    budget = str(int(ours["env_steps"].max()))
    matched = authors[authors["budget"] != "end"]["budget"].unique()
    if budget not in matched:  # the authors' summary was made for another budget
        budget = matched[0]
    lines = [f"| agent | metric | ours ({int(ours['env_steps'].max()) / 1e6:.1f}M steps) | authors at "
             f"{int(budget) / 1e6:.1f}M | authors at 75M |", "|---|---|---|---|---|"]

    def find(frame, agent, metric, **where):
        hit = frame[(frame["agent"] == agent) & (frame["metric"] == metric)]
        for key, value in where.items():
            hit = hit[hit[key] == value]
        return None if hit.empty else hit.iloc[0]

    for agent in AUTHORS_AGENTS.values():
        for metric in METRICS:
            digits = 3 if metric != "return" else 1
            ours_row = find(ours, agent, metric)
            if agent == "a2c" and metric != "return":
                continue
            lines.append(f"| {agent} | {metric} | {_cell(ours_row, digits)} | "
                         f"{_cell(find(authors, agent, metric, budget=budget), digits)} | "
                         f"{_cell(find(authors, agent, metric, budget='end'), digits)} |")
    return "\n".join(lines) + "\n"
