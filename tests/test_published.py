"""mgrl.published: the authors' per-run CSVs reduced at a matched budget and at their end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mgrl import published
from mgrl.published import STEPS_PER_ITERATION


def write_run(folder, run, iterations, values):
    folder.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame({"iteration": iterations, "time": 0, "value": values})
    rows.to_csv(folder / f"{run}__metric.csv", header=False, index=False)


@pytest.fixture
def authors(tmp_path):
    """Two runs of mgrl (MG) and one of a2c: return v = run + iteration / 1000, gamma 0.5 + 0.1 run
    (constant) and bias 0.4; points every 100 iterations up to 2000."""
    iterations = np.arange(0, 2001, 100)
    for run in (1, 2):
        write_run(tmp_path / "mgrl_return", f"R{run}", iterations, run + iterations / 1000)
        write_run(tmp_path / "mgrl_gamma", f"R{run}", iterations, np.full(iterations.shape, 0.5 + 0.1 * run))
        write_run(tmp_path / "mgrl_bias", f"R{run}", iterations, np.full(iterations.shape, 0.4))
    write_run(tmp_path / "a2c_return", "R0", iterations, 10 + 0 * iterations)
    return tmp_path, iterations


def test_authors_summary_at_their_end_and_at_a_matched_budget(authors):
    data_dir, iterations = authors
    runs = published.read_authors_runs(data_dir)
    assert set(runs.agent) == {"mg", "a2c"} and (runs.env_steps == runs.iteration * STEPS_PER_ITERATION).all()
    budget = 1000 * STEPS_PER_ITERATION
    summary = published.authors_summary(runs, budget).set_index(["agent", "metric", "budget"])
    # End: mean of each run's last 10 points (iterations 1100..2000: mean 1550), then over runs.
    end = summary.loc[("mg", "return", "end")]
    assert end["mean"] == pytest.approx(np.mean([1 + 1.55, 2 + 1.55])) and end["runs"] == 2
    assert end["lo"] < end["mean"] < end["hi"]
    # Matched budget: return over the points in (750, 1000] iterations (800, 900, 1000: mean 0.9).
    at = summary.loc[("mg", "return", str(int(budget)))]
    assert at["mean"] == pytest.approx(np.mean([1.9, 2.9]))
    # gamma and bias: the last point at or before the budget; gamma's mean on the logit scale.
    gamma = summary.loc[("mg", "gamma", str(int(budget)))]
    logit = np.log([0.6 / 0.4, 0.7 / 0.3]).mean()
    assert gamma["mean"] == pytest.approx(1 / (1 + np.exp(-logit)))
    assert summary.loc[("mg", "bias", "end")]["mean"] == pytest.approx(0.4)
    assert summary.loc[("a2c", "return", "end")]["mean"] == pytest.approx(10.0)


def test_missing_data_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        published.read_authors_runs(tmp_path)


def test_ours_summary_and_table(authors):
    data_dir, _ = authors
    authors_table = published.authors_summary(published.read_authors_runs(data_dir),
                                              1000 * STEPS_PER_ITERATION)
    rows = []
    for scheme, gamma in (("mg", 0.8), ("a2c", 0.5)):
        for seed in range(3):
            for interval in range(1, 5):
                rows.append({"horizon": 1, "scheme": scheme, "seed": seed, "interval": interval,
                             "env_steps": interval * 100, "train/episode_return": 10.0 + seed,
                             "train/reward_per_step": 0.1, "meta/gamma": gamma,
                             "meta/outer_advantage_mean": 0.1 * seed})
    ours = published.ours_summary(pd.DataFrame(rows)).set_index(["agent", "metric"])
    assert ours.loc[("mg", "return"), "mean"] == pytest.approx(11.0)
    assert ours.loc[("mg", "gamma"), "mean"] == pytest.approx(0.8)
    assert ours.loc[("mg", "bias"), "mean"] == pytest.approx(0.1)
    table = published.comparison_table(authors_table, ours.reset_index())
    assert "| mg | gamma | 0.800 [" in table and "| a2c | return | 11.0 [" in table
