"""The real Snakefile on a tiny config: lint, job counts, end to end, incremental reruns, bad configs.

The workflow (Snakefile, workflow/, src/, envs/, config.yaml) is copied into a temporary folder so
that outputs and file timestamps of the checkout are never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mgrl.config import load_config
from mgrl.figures import FIGURES
from mgrl.metrics import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

TINY = {
    "name": "tiny",
    "seeds": [0, 1],
    "horizons": [1, 2],
    "schemes": {"last": {"kind": "last"}, "uniform": {"kind": "uniform"}},
    "env": {"num_rows": 5, "num_cols": 5, "time_limit": 8, "num_envs": 4, "rollout_length": 3},
    "network": {"conv_channels": [4], "policy_hidden": [8], "value_hidden": [8]},
    "train": {"num_intervals": 3, "inner_updates_per_interval": 2, "checkpoint_every": 1},
    "probe": {"num_samples": 4, "reference_horizon": 2, "reference_samples": 4,
              "checkpoints": [1, 3], "bootstrap": 50},
}


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "src", "envs", "config.yaml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, config: dict | None = None, check: bool = True):
    cmd = [*SNAKEMAKE, "--cores", "2", *args]
    if config is not None:
        path = workdir / "test_config.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(path)]  # replaces config.yaml (see the Snakefile)
    env = dict(os.environ, MGRL_JAX_CACHE=str(ROOT / ".jax_cache" / "pipeline"))
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def job_counts(proc) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table of a dry run."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1]
    counts = {}
    for line in table.splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            if parts and parts[0] == "total":
                break
            continue
        counts[parts[0]] = int(parts[1])
    return counts


def expected_jobs(cfg_path: Path) -> dict[str, int]:
    """The jobs `snakemake -n` must list for a config, computed from the config alone."""
    cfg = load_config(cfg_path)
    groups = -(-len(cfg.seeds) // cfg.seeds_per_job)
    per_group = 1 + sum(1 if k == 1 else len(cfg.schemes) for k in cfg.horizons)  # a2c + runs
    counts = {"train": groups * per_group, "probe": len(cfg.seeds), "aggregate_training": 1,
              "aggregate_probes": 1, "claims": 1, "all": 1}
    counts.update({f"figure_{f}": 1 for f in FIGURES})
    return counts


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The whole DAG of the tiny config, run once for the module."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    start = time.perf_counter()
    snakemake(workdir, config=TINY)
    print(f"tiny pipeline: {time.perf_counter() - start:.0f}s")
    return workdir


def test_lint_is_clean(tmp_path):
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, "--lint")
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


@pytest.mark.parametrize("config_file", ["config.yaml", "config/paper.yaml"])
def test_dry_run_lists_exactly_the_expected_jobs_for_the_shipped_configs(tmp_path, config_file):
    workdir = copy_workflow(tmp_path)
    args = ["-n"] if config_file == "config.yaml" else ["-n", "--configfile", str(ROOT / config_file)]
    counts = job_counts(snakemake(workdir, *args))
    assert counts == expected_jobs(ROOT / config_file)


def assert_final_outputs(results: Path) -> None:
    """Every figure (PNG and PDF), every table, and a claims table with C1-C4 and verdicts."""
    for name in FIGURES:
        for ext in ("png", "pdf"):
            path = results / "figures" / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
    for table in ("claims.md", "claims.csv", "learning.csv", "estimators.csv", "variance_reduction.csv"):
        assert (results / "tables" / table).stat().st_size > 0, table
    claims = pd.read_csv(results / "tables" / "claims.csv")
    assert set(claims["claim"]) == {"C1", "C2", "C3", "C4"}
    assert set(claims["holds"]) <= {"holds", "not confirmed"}


def test_end_to_end_outputs_and_schemas(tiny_run):
    results = tiny_run / "results"
    assert_final_outputs(results)
    runs = sorted((results / "runs" / "tiny").glob("K*/*/seed*/metrics.parquet"))
    assert len(runs) == 2 * 4  # seeds x (a2c, K1, K2 last, K2 uniform)
    for path in runs:
        assert list(pd.read_parquet(path).columns) == list(COLUMNS)
    training = pd.read_parquet(results / "metrics" / "training.parquet")
    assert list(training.columns) == list(COLUMNS)
    assert len(training) == 8 * TINY["train"]["num_intervals"]
    assert set(zip(training.horizon, training.scheme)) == {(1, "a2c"), (1, "last"), (2, "last"),
                                                          (2, "uniform")}
    from mgrl.probe import SUMMARY_COLUMNS

    summary = pd.read_parquet(results / "metrics" / "probe_summary.parquet")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert (summary["variance_trace"] > 0).all()
    report = snakemake(tiny_run, "--report", "results/report.html", config=TINY)
    assert report.returncode == 0
    html = (results / "report.html").read_text(errors="replace")
    assert len(html) > 10_000


def test_editing_one_figure_module_reruns_only_that_figure(tiny_run):
    # Snakemake 9 reruns on changed content (a bare `touch` with identical content is ignored).
    module = tiny_run / "src" / "mgrl" / "figures" / "variance.py"
    module.write_text(module.read_text() + "\n# a change to the plotting code\n")
    counts = job_counts(snakemake(tiny_run, "-n", config=TINY))
    assert counts == {"figure_variance": 1, "all": 1}


def test_adding_a_seed_schedules_only_that_seed_and_downstream(tiny_run):
    config = dict(TINY, seeds=[0, 1, 2])
    counts = job_counts(snakemake(tiny_run, "-n", config=config))
    expected = {"train": 4, "probe": 1, "aggregate_training": 1, "aggregate_probes": 1, "claims": 1,
                "all": 1, **{f"figure_{f}": 1 for f in FIGURES}}
    assert counts == expected
    out = snakemake(tiny_run, "-n", "--quiet", "rules", config=config)
    scheduled = re.findall(r"seed(\d+)/", out.stdout + out.stderr)
    assert set(scheduled) <= {"2"}


@pytest.mark.parametrize(
    "change, key",
    [
        ({"horizonz": [1]}, "horizonz"),
        ({"horizons": [0, 1]}, "horizons"),
        ({"schemes": {"mix": {"kind": "median"}}}, "schemes.mix.kind"),
        ({"seeds": []}, "seeds"),
    ],
)
def test_invalid_config_fails_before_any_job_with_the_key(tmp_path, change, key):
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, config={**TINY, **change}, check=False)
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()
