"""The real Snakefile on a tiny config: lint, job counts, end to end, incremental reruns, bad configs,
and a second experiment beside the first in the same checkout.

The workflow (Snakefile, workflow/, src/, envs/, config.yaml) is copied into a temporary folder so
that outputs and file timestamps of the checkout are never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from forked_snakemake import run_snakemake
from mgrl.code import ANALYSIS_MODULES, PROBE_MODULES, TRAINING_MODULES, module_paths
from mgrl.analysis import CLAIM_COLUMNS
from mgrl.config import config_from_dict, load_config
from mgrl.figures import figures_for
from mgrl.metrics import COLUMNS
from mgrl.estimators import scheme_weights

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

TINY = {
    "name": "tiny",
    "seeds": [0, 1],
    "seeds_per_job": 2,  # both seeds in one job (vmapped): 4 training jobs, one per run
    "horizons": [1, 2],
    "schemes": {"last": {"kind": "last"}, "uniform": {"kind": "uniform"}},
    "env": {"num_rows": 5, "num_cols": 5, "time_limit": 8, "num_envs": 4, "rollout_length": 3},
    "network": {"conv_channels": [4], "policy_hidden": [8], "value_hidden": [8]},
    "meta": {"learn": ["gamma", "lambda"]},
    "train": {"num_intervals": 3, "inner_updates_per_interval": 2, "checkpoint_every": 1},
    # M = M_ref = 16 as in tests/test_probe.py: the same compiled samplers at K = 1 and 2
    "probe": {"num_samples": 16, "reference_horizon": 2, "reference_samples": 16,
              "checkpoints": [1, 3], "bootstrap": 50},
}


def load_config_dict(raw: dict) -> dict:
    return config_from_dict(raw).to_dict()


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "src", "envs", "config.yaml", "config/authors"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, config: dict | None = None, check: bool = True):
    """`python -m snakemake --cores 2 *args` in ``workdir`` (forked from a process that imported
    Snakemake already: tests/forked_snakemake.py); the CompletedProcess with its output."""
    cmd = ["--cores", "2", *args]
    if config is not None:
        path = workdir / "test_config.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(path)]  # replaces config.yaml (see the Snakefile)
    proc = run_snakemake(cmd, cwd=workdir)  # $MGRL_JAX_CACHE: conftest
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-5000:]}")
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
    """The jobs `snakemake -n` must list for a config, computed from the config alone.

    Per seed group: a2c, one run per distinct estimator at each K (schemes with equal weights are
    one estimator, e.g. every weighting scheme at K = 1, uniform and lambda_0.5 at K = 2; a bmg
    scheme is its own estimator per L, a scheme with the outer critic differs from one without,
    and one with its own meta-update (samples, optimiser, rate) from one without; a scheme with
    its own horizons runs only there), and one a2c run per fixed gamma of the sensitivity sweep other than
    agent.gamma_init (that one is the a2c run).
    """
    cfg = load_config(cfg_path)
    raw = yaml.safe_load(cfg_path.read_text())
    groups = -(-len(cfg.seeds) // cfg.seeds_per_job)
    def estimator(s, k):
        outer = cfg.agent.outer_critic if s.outer_critic is None else s.outer_critic
        target = (s.bootstrap_target or "outer") if s.kind == "bmg" else None
        bmg = (s.bootstrap_steps, target, s.matching_states or "target") if s.kind == "bmg" else ()
        return (tuple(np.round(scheme_weights(s, k), 12)), bmg, outer,
                s.meta_samples or cfg.meta.samples, s.meta_optimizer or cfg.meta.optimizer,
                s.meta_learning_rate or cfg.meta.learning_rate)

    distinct = sum(len({estimator(s, k) for s in cfg.schemes.values()
                        if (s.kind != "custom" or len(s.weights) == k)
                        and (s.horizons is None or k in s.horizons)}) for k in cfg.horizons)
    gammas = (raw.get("sensitivity") or {}).get("gammas", [])
    sweep = sum(1 for g in gammas if g != cfg.agent.gamma_init)
    counts = {"train": groups * (1 + distinct + sweep), "probe": len(cfg.seeds),
              "aggregate_training": 1, "aggregate_probes": 1, "aggregate_sensitivity": 1,
              "claims": 1, "all": 1}
    counts.update({f"figure_{f}": 1 for f in figures_for(cfg)})
    if (raw.get("reproduction") or {}).get("authors_runs"):
        counts["reproduction"] = 1  # beside the authors' published runs
    return counts


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The whole DAG of the tiny config, run once for the module."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    start = time.perf_counter()
    snakemake(workdir, config=TINY)
    print(f"tiny pipeline: {time.perf_counter() - start:.0f}s")
    return workdir


def assert_final_outputs(results: Path) -> None:
    """Every figure (PNG and PDF), every table, and a claims table with its claims and verdicts."""
    for name in figures_for(config_from_dict(TINY)):
        for ext in ("png", "pdf"):
            path = results / "figures" / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
    for table in ("claims.md", "claims.csv", "claims.html", "learning.csv", "estimators.csv",
                  "variance_reduction.csv", "gamma_sensitivity.csv", "gamma_sensitivity.html"):
        assert (results / "tables" / table).stat().st_size > 0, table
    claims = pd.read_csv(results / "tables" / "claims.csv")
    assert list(claims.columns) == list(CLAIM_COLUMNS)
    # No sensitivity sweep, so no gamma effect and no return margin: the margin claims (C4, C5)
    # get no row, and no row holds a nan.
    assert set(claims["claim"]) == {"C1", "C2", "C3", "C5d"}
    assert not claims.isna().any().any() and not claims.astype(str).apply(
        lambda column: column.str.contains("nan")).any().any()
    assert set(claims["verdict"]) <= {"holds", "contradicted", "inconclusive"}
    assert claims["unit"].str.startswith("seeds (n=").all()
    estimators = pd.read_csv(results / "tables" / "estimators.csv")
    assert ((estimators.cosine_to_reference_lo >= -1) & (estimators.cosine_to_reference_hi <= 1)).all()
    for col in ("variance_trace", "snr"):
        assert (estimators[f"{col}_lo"] > 0).all(), col


def test_end_to_end_outputs_and_schemas(tiny_run):
    results = tiny_run / "results" / TINY["name"]  # every output of the experiment
    assert sorted(p.name for p in (tiny_run / "results").iterdir()) == [TINY["name"]]
    assert_final_outputs(results)
    runs = sorted((results / "runs").glob("K*/*/seed*/metrics.parquet"))
    # (a2c, K1, K2 last, K2 uniform), each one job of both seeds; no sensitivity sweep
    assert [p.parent.name for p in runs] == ["seed0-1"] * 4
    for path in runs:
        frame = pd.read_parquet(path)
        assert list(frame.columns) == list(COLUMNS)
        assert sorted(set(frame.seed)) == TINY["seeds"], path
    training = pd.read_parquet(results / "metrics" / "training.parquet")
    assert list(training.columns) == list(COLUMNS)
    assert len(training) == 8 * TINY["train"]["num_intervals"]
    assert set(zip(training.horizon, training.scheme)) == {(1, "a2c"), (1, "last"), (2, "last"),
                                                          (2, "uniform")}
    assert len(pd.read_parquet(results / "metrics" / "sensitivity.parquet")) == 0  # sweep off
    table = pd.read_csv(results / "tables" / "gamma_sensitivity.csv")
    fixed = table[table.kind == "fixed"]  # the sweep is off: the a2c run alone, at gamma_init
    assert list(fixed.gamma) == [0.8] and (fixed.seeds == 2).all()
    assert set(zip(table[table.kind == "meta-learned"].horizon,
                   table[table.kind == "meta-learned"].scheme)) == {(1, "last"), (2, "last"), (2, "uniform")}
    from mgrl.probe import SUMMARY_COLUMNS

    summary = pd.read_parquet(results / "metrics" / "probe_summary.parquet")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert (summary["variance_trace"] > 0).all()
    report = snakemake(tiny_run, "--report", f"results/{TINY['name']}/report.html",
                       config=TINY)
    assert report.returncode == 0
    html = (results / "report.html").read_text(errors="replace")
    assert len(html) > 10_000
    assert "claims.html" in html and "gamma_sensitivity.html" in html  # the tables, not just figures


@contextlib.contextmanager
def edited(path: Path):
    """Append a line to a source file for the block, then restore its bytes and timestamps."""
    original, stat = path.read_bytes(), path.stat()
    path.write_bytes(original + b"\n# an edit of the code\n")
    try:
        yield
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def source(workdir: Path, module: str) -> Path:
    """The copied source file of an mgrl module (``"agent"``, ``"estimators.uniform"``, ...)."""
    (path,) = module_paths((module,), workdir / "src" / "mgrl")
    return Path(path)


def tiny_jobs(tmp_path: Path) -> dict[str, int]:
    """Every job of the TINY config (what a run from scratch schedules)."""
    path = tmp_path / "tiny_expected.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return expected_jobs(path)


def test_editing_one_figure_module_reruns_only_that_figure(tiny_run):
    # Snakemake 9 reruns on changed content (a bare `touch` with identical content is ignored).
    with edited(tiny_run / "src" / "mgrl" / "figures" / "variance.py"):
        counts = job_counts(snakemake(tiny_run, "-n", config=TINY))
    assert counts == {"figure_variance": 1, "all": 1}
    assert job_counts(snakemake(tiny_run, "-n", config=TINY)) == {}  # restored: up to date


# One module of each package: a package's modules are listed by one glob (mgrl.code), and that
# every one of them is hashed is tests/test_train.py's check.
ONE_PER_PACKAGE = list({m.split(".")[0]: m for m in reversed(TRAINING_MODULES)}.values())[::-1]


@pytest.mark.parametrize("module", ONE_PER_PACKAGE)
def test_editing_training_code_reruns_training_probes_and_everything_downstream(
        tiny_run, tmp_path, module):
    with edited(source(tiny_run, module)):
        counts = job_counts(snakemake(tiny_run, "-n", config=TINY))
    assert counts == tiny_jobs(tmp_path)


def test_editing_probe_code_reruns_probes_and_downstream_not_training(tiny_run):
    probe_only = [m for m in PROBE_MODULES if m not in TRAINING_MODULES + ANALYSIS_MODULES]
    with edited(source(tiny_run, probe_only[0])):
        counts = job_counts(snakemake(tiny_run, "-n", config=TINY))
    probe_figures = [f for f in figures_for(config_from_dict(TINY))
                     if "probe_summary" in importlib.import_module(f"mgrl.figures.{f}").INPUTS]
    assert probe_figures  # the probe's figures exist, so the expectation below is not vacuous
    expected = {"probe": len(TINY["seeds"]), "aggregate_probes": 1, "claims": 1, "all": 1,
                **{f"figure_{f}": 1 for f in probe_figures}}
    assert counts == expected


def test_editing_analysis_code_reruns_aggregates_claims_and_figures_only(tiny_run, tmp_path):
    everything = tiny_jobs(tmp_path)
    for module in ANALYSIS_MODULES:
        with edited(source(tiny_run, module)):
            counts = job_counts(snakemake(tiny_run, "-n", config=TINY))
        # a module the probes also run (the per-state statistics) reruns the probes as well
        upstream = ("train",) if module in PROBE_MODULES else ("train", "probe")
        assert counts == {k: v for k, v in everything.items() if k not in upstream}, module


def test_adding_a_seed_schedules_only_that_seed_and_downstream(tiny_run):
    config = dict(TINY, seeds=[0, 1, 2])
    counts = job_counts(snakemake(tiny_run, "-n", config=config))
    expected = {"train": 4, "probe": 1, "aggregate_training": 1, "aggregate_probes": 1, "claims": 1,
                "aggregate_sensitivity": 1, "all": 1,
                **{f"figure_{f}": 1 for f in figures_for(config_from_dict(config))}}
    assert counts == expected
    out = snakemake(tiny_run, "-n", "--quiet", "rules", config=config)
    scheduled = re.findall(r"seed(\d+)/", out.stdout + out.stderr)
    assert set(scheduled) <= {"2"}


# A second experiment beside TINY in the same checkout: another name, K = 1 only (where TINY's
# schemes are one run: 2 training jobs of both seeds) and one interval, with TINY's programs, so the
# shared compilation cache serves it. Its training table and a figure suffice: they have the same
# file names as TINY's.
OTHER = dict(TINY, name="tiny_k1", horizons=[1], train={**TINY["train"], "num_intervals": 1},
             probe={**TINY["probe"], "checkpoints": [1]})
OTHER_TARGETS = [f"results/{OTHER['name']}/tables/learning.csv",
                 f"results/{OTHER['name']}/figures/final_return.png"]


def file_states(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: its SHA-256 and modification time."""
    return {str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(),
                                            path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_second_experiment_writes_under_its_own_name_and_leaves_the_first_intact(tiny_run):
    first = tiny_run / "results" / TINY["name"]
    before = file_states(first)
    assert {"tables/learning.csv", "figures/final_return.png"} <= set(before)
    start = time.perf_counter()
    counts = job_counts(snakemake(tiny_run, *OTHER_TARGETS, config=OTHER))
    print(f"second experiment: {time.perf_counter() - start:.0f}s")
    assert counts == {"train": 2, "aggregate_training": 1, "figure_final_return": 1}
    second = tiny_run / "results" / OTHER["name"]
    assert pd.read_csv(second / "tables" / "learning.csv")["horizon"].eq(1).all()
    assert (second / "figures" / "final_return.png").stat().st_size > 1000
    assert {p.name for p in (tiny_run / "results").iterdir()} == {TINY["name"], OTHER["name"]}
    # the first experiment's runs, probes, logs, datasets, tables and figures: same bytes, untouched
    assert file_states(first) == before
    assert job_counts(snakemake(tiny_run, "-n", config=TINY)) == {}  # and both are up to date
    assert job_counts(snakemake(tiny_run, "-n", *OTHER_TARGETS, config=OTHER)) == {}
