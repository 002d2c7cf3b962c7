"""The comparison with the authors' published runs (mgrl.reproduction) on synthetic data of known
answer, their file layout, the committed extract, and the Welch interval and verdict rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from mgrl import reproduction as rep
from mgrl import stats
from mgrl.config import ConfigError, ReproductionConfig, check_reproduction, load_config
from test_stats import grid_intervals

ROOT = Path(__file__).resolve().parents[1]
EXTRACT = ROOT / "config" / "authors" / "snake_runs.csv.gz"


def test_welch_interval_equals_scipys():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.3, 5), rng.normal(0.7, 0.1, 10)
    d, lo, hi = stats.welch_difference_ci(a, b)
    ci = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d == pytest.approx(a.mean() - b.mean())
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert np.isnan(stats.welch_difference_ci(a[:1], b)[1])


def test_reproduction_rule_gives_exactly_one_outcome_per_interval():
    rule = stats.reproduction_rule(0.5)
    pairs, undefined = grid_intervals(0.5)
    seen = set()
    for lo, hi in pairs:
        assert not (rule.holds(lo, hi) and rule.contradicted(lo, hi)), (lo, hi)
        seen.add(stats.verdict(rule, lo, hi))
    assert seen == {"holds", "contradicted", "inconclusive"}
    assert stats.verdict(rule, -0.4, 0.4) == "holds"
    assert stats.verdict(rule, -0.6, 0.4) == "inconclusive"  # contains 0, beyond the margin
    assert stats.verdict(rule, 0.01, 0.2) == "inconclusive"  # real, but within the margin
    assert stats.verdict(rule, 0.6, 0.9) == "contradicted"  # beyond the margin: differs
    assert stats.verdict(rule, -0.9, -0.51) == "contradicted"
    assert stats.verdict(stats.reproduction_rule(np.nan), -0.1, 0.1) == "inconclusive"
    for lo, hi in undefined:
        assert stats.verdict(rule, lo, hi) == "inconclusive"


def authors_frame(values: dict[tuple[str, str], list[float]], updates=146) -> pd.DataFrame:
    rows = []
    for (agent, metric), runs in values.items():
        policy = "" if metric == "gamma" else ("greedy" if agent == "a2c" else "sampled")
        for i, v in enumerate(runs):
            rows.append({"agent": agent, "metric": metric, "policy": policy, "run": f"MET-{i}",
                         "iteration": updates, "value": v})
    return pd.DataFrame(rows)


def training_frame(values: dict[tuple[str, str], list[float]], updates=146) -> pd.DataFrame:
    rows = {}
    for (scheme, column), seeds in values.items():
        for seed, v in enumerate(seeds):
            row = rows.setdefault((scheme, seed), {"scheme": scheme, "seed": seed, "horizon": 1,
                                                   "inner_updates": updates})
            row[column] = v
    return pd.DataFrame(list(rows.values()))


FRACTIONS = {"gamma": 0.25, "return": 0.25}
THEIRS_GAMMA = {"mg": [0.84, 0.85, 0.86, 0.85, 0.84, 0.86], "mg_oc": [0.92] * 3 + [0.915, 0.925, 0.92]}


def test_table_reproduces_differs_or_is_inconclusive_as_the_data_say():
    authors = authors_frame({("mg", "gamma"): THEIRS_GAMMA["mg"],
                             ("mg_oc", "gamma"): THEIRS_GAMMA["mg_oc"],
                             ("a2c", "return"): [4.0, 5.0, 4.5, 4.6, 4.4, 4.5],
                             ("mg", "return"): [6.0] * 6})
    training = training_frame({
        ("mg", "meta/gamma_mean"): [0.845, 0.855, 0.85, 0.85],  # equal to theirs, tight
        ("mg_oc", "meta/gamma_mean"): [0.99, 0.985, 0.99, 0.995],  # far above theirs
        ("a2c", "eval/return_greedy"): [1.0, 9.0, 4.0, 6.0],  # mean 5, very noisy
        ("a2c", "eval/return_sampled"): [40.0] * 4,  # the wrong policy: must not be read
        ("mg", "eval/return_sampled"): [6.0, 6.1, 5.9, 6.0],
        ("mg", "eval/return_greedy"): [0.0] * 4})
    # the fixed-gamma runs of the primary seeds: gamma's effect on the greedy return is 9 - 5 = 4
    fixed = training_frame({("a2c", "eval/return_greedy"): [1.0, 9.0, 4.0, 6.0],
                            ("a2c", "meta/gamma"): [0.8] * 4,
                            ("a2c_gamma0.99", "eval/return_greedy"): [8.0, 10.0, 9.0, 9.0],
                            ("a2c_gamma0.99", "meta/gamma"): [0.99] * 4})
    table = rep.reproduction_table(training, authors, [146], FRACTIONS, ["a2c", "mg", "mg_oc"],
                                   margin_training=fixed)
    got = table.set_index(["agent", "metric"])
    # gamma margin: 0.25 x the authors' outer-critic effect |0.92 - 0.85| = 0.0175
    assert got.loc[("mg", "gamma"), "margin"] == pytest.approx(0.25 * 0.07)
    assert got.loc[("mg", "gamma"), "verdict"] == "reproduced"
    assert got.loc[("mg_oc", "gamma"), "verdict"] == "differs"
    # return margin: 0.25 x gamma's effect 4 = 1, from the fixed-gamma runs alone
    assert got.loc[("mg", "return"), "margin"] == pytest.approx(1.0)
    assert got.loc[("a2c", "return"), "ours"] == pytest.approx(5.0)  # greedy, as their a2c file
    assert got.loc[("a2c", "return"), "verdict"] == "inconclusive"  # CI wider than the margin
    assert got.loc[("mg", "return"), "ours"] == pytest.approx(6.0)  # sampled, as their mg file
    assert got.loc[("mg", "return"), "verdict"] == "reproduced"
    no_sweep = rep.reproduction_table(training, authors, [146], FRACTIONS, ["a2c", "mg", "mg_oc"])
    assert (no_sweep.loc[no_sweep.metric == "return", "verdict"] == "inconclusive").all()
    assert ("a2c", "gamma") not in got.index
    for r in table.itertuples():
        assert r.verdict == rep.VERDICT_NAMES.get(
            stats.verdict(stats.reproduction_rule(r.margin), r.difference_lo, r.difference_hi),
            "inconclusive")
    gaps = rep.gap_table(training, authors, [146], ["a2c", "mg", "mg_oc"])
    (gap,) = gaps.itertuples()
    assert gap.ours == pytest.approx(np.mean([0.145, 0.13, 0.14, 0.145]))  # paired by seed
    assert gap.ours_verdict == "holds" and gap.authors_verdict == "holds"
    text = rep.reproduction_markdown(table, gaps)
    assert "outer-critic effect on gamma" in text and "mg_oc - mg" in text
    assert "No comparison" in rep.reproduction_markdown(table.iloc[:0], gaps.iloc[:0])
    replicated = rep.replicated_markdown(table, table[table.metric == "gamma"])
    assert replicated.count("one seed set only") == 2 and "nan" not in replicated


def test_authors_files_are_read_with_their_policy_and_first_point_at_zero(tmp_path):
    data = tmp_path / "snake" / "data"
    for folder, name, rows in (
            ("a2c_return", "MET-1__eval_episode_reward_determinist_policy.csv", "3.0,1,0.1\n146.0,2,0.2\n"),
            ("mgrl_return", "MET-2__eval_episode_reward_stochastic_policy.csv", "3.0,1,0.3\n146.0,2,0.4\n"),
            ("mgrl_gamma", "MET-2__train_mean_gamma.csv", "1.0,1,0.8\n146.0,2,0.81\n")):
        (data / folder).mkdir(parents=True)
        (data / folder / name).write_text(rows)
    runs = rep.read_authors_data(data)
    assert set(map(tuple, runs[["agent", "metric", "policy"]].drop_duplicates().to_numpy())) == {
        ("a2c", "return", "greedy"), ("mg", "return", "sampled"), ("mg", "gamma", "")}
    assert sorted(runs["iteration"].unique()) == [0, 146]
    out = tmp_path / "extract.csv.gz"
    runs.to_csv(out, index=False)
    back = rep.load_authors_runs(out)
    pd.testing.assert_frame_equal(back, runs, check_dtype=False)


def test_committed_extract_has_ten_runs_per_agent_and_the_published_means():
    """The extract of their snake/data (eda5463): 10 runs per agent and metric; its means at 1,168
    updates are the issue's table (t-intervals over 10 runs, linear interpolation to 1,172)."""
    runs = rep.load_authors_runs(EXTRACT)
    assert (runs.groupby(["agent", "metric"])["run"].nunique() == 10).all()
    at = runs[runs["iteration"] == 1168].groupby(["agent", "metric"])["value"].mean()
    assert at[("mg", "gamma")] == pytest.approx(0.849, abs=0.002)
    assert at[("mg_oc", "gamma")] == pytest.approx(0.918, abs=0.002)
    assert at[("bmg_oc", "gamma")] == pytest.approx(0.898, abs=0.002)


def test_reproduction_settings_are_checked_against_the_experiment(tmp_path):
    cfg = load_config(ROOT / "config" / "authors_snake.yaml")
    check_reproduction(cfg, ReproductionConfig(authors_runs=str(EXTRACT), updates=(1168,)))
    with pytest.raises(ConfigError, match="reproduction.authors_runs.*no file"):
        check_reproduction(cfg, ReproductionConfig(authors_runs="nope.csv", updates=(1168,)))
    with pytest.raises(ConfigError, match="reproduction.updates.*1000 is not a logging point"):
        check_reproduction(cfg, ReproductionConfig(authors_runs=str(EXTRACT), updates=(1000,)))
    with pytest.raises(ConfigError, match="reproduction.updates.*2336 is not a logging point"):
        check_reproduction(cfg, ReproductionConfig(authors_runs=str(EXTRACT), updates=(2336,)))
    import dataclasses

    finer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, inner_updates_per_interval=73))
    with pytest.raises(ConfigError, match="reproduction.updates.*73 is not a logged point of every"):
        check_reproduction(finer, ReproductionConfig(authors_runs=str(EXTRACT), updates=(73, 146)))
