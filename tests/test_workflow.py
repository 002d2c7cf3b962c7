"""The real Snakefile without running the pipeline: lint, exact dry-run job lists of the shipped
configs, of the sensitivity sweep and of the replicate target, and bad configs that fail before any
job starts.

Separate from tests/test_pipeline.py (whose module fixture runs the tiny pipeline) so that
pytest-xdist runs these beside it. Each test copies the workflow into a temporary folder.
"""

from __future__ import annotations

import re

import pytest
import yaml

from mgrl.config import AnalysisConfig, load_config
from test_pipeline import (ROOT, TINY, copy_workflow, expected_jobs, job_counts, load_config_dict,
                           snakemake)


def test_expected_jobs_of_the_default_config_by_hand():
    # 5 seeds, K in {1, 2, 4}, schemes last/uniform: K=1 one run, K=2 and K=4 two each; plus a2c;
    # plus gammas 0.5, 0.8, 0.99 (0.1 is gamma_init, the a2c run itself).
    counts = expected_jobs(ROOT / "config.yaml")
    cfg = load_config(ROOT / "config.yaml")
    assert cfg.horizons == (1, 2, 4) and len(cfg.seeds) == 5 and cfg.seeds_per_job == 1
    assert counts["train"] == 5 * (1 + (1 + 2 + 2) + 3)


def test_expected_jobs_of_the_estimators_config_by_hand():
    # 5 seeds, K in {1, 4}, schemes last, uniform, bmg, last_oc: at K = 1 uniform is last (3 runs:
    # last, bmg, last_oc), at K = 4 all 4; plus a2c; plus gamma 0.99 (0.1 is the a2c run itself).
    counts = expected_jobs(ROOT / "config" / "estimators.yaml")
    cfg = load_config(ROOT / "config" / "estimators.yaml")
    assert cfg.horizons == (1, 4) and len(cfg.seeds) == 5 and cfg.seeds_per_job == 1
    assert counts["train"] == 5 * (1 + 3 + 4 + 1) and counts["probe"] == 5


@pytest.mark.parametrize("name, runs", [
    # a2c, a2c at gamma 0.99 (0.8 is gamma_init), mg, mg_oc, bmg, bmg_oc, all at K = 1
    ("published", 6),
    # a2c, a2c at gammas 0.91, 0.99, 0.999, mg, mg_oc, bmg, bmg_oc, all at K = 1
    ("discounting_chain", 8),
])
def test_expected_jobs_of_the_single_horizon_configs_by_hand(name, runs):
    counts = expected_jobs(ROOT / "config" / f"{name}.yaml")
    cfg = load_config(ROOT / "config" / f"{name}.yaml")
    assert cfg.horizons == (1,) and len(cfg.seeds) == 5 and cfg.seeds_per_job == 1
    assert counts["train"] == 5 * runs and counts["probe"] == 5

def test_sensitivity_runs_reuse_the_train_rule_once_per_new_gamma(tmp_path):
    workdir = copy_workflow(tmp_path)
    config = dict(TINY, sensitivity={"gammas": [0.5, 0.8, 0.95]})  # 0.8 = gamma_init: the a2c run
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", "--printshellcmds", config=config)
    counts = job_counts(proc)
    assert counts == expected_jobs(path)
    assert counts["train"] == 1 + 1 + 2 + 2  # one job of both seeds x (a2c, K1, K2 x 2, gammas 0.5, 0.95)
    text = proc.stdout + proc.stderr
    for gamma in ("0.5", "0.95"):
        assert f"results/runs/tiny/K1/a2c_gamma{gamma}/seed0-1/metrics.parquet" in text
    assert "a2c_gamma0.8" not in text
    command = next(line for line in text.splitlines() if "--scheme a2c_gamma0.95" in line)
    assert '"gamma_init": 0.95' in command and '"learn": []' in command  # fixed gamma, no meta


def test_dry_run_of_the_replicate_target_adds_the_replicate_seeds_jobs_only(tmp_path):
    workdir = copy_workflow(tmp_path / "workflow")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    cfg = load_config(path)
    offset = AnalysisConfig().replication.seed_offset  # TINY has no replication section: the default
    replicate = [seed + offset for seed in cfg.seeds]
    primary = expected_jobs(path)  # the default target's jobs

    plain = snakemake(workdir, "-n", config=TINY)
    assert job_counts(plain) == primary
    assert f"seed{replicate[0]}" not in plain.stdout + plain.stderr

    proc = snakemake(workdir, "-n", "replicate", config=TINY)
    text = proc.stdout + proc.stderr
    # Nothing exists yet, so the primary claims the replication table compares with are scheduled
    # too (train, probe, their aggregates, claims; not the figures or the sensitivity aggregate).
    # TINY has no sensitivity sweep, so the replicate seeds (as many, as many per job) need as many
    # training jobs as the primary ones.
    assert job_counts(proc) == {
        "train": 2 * primary["train"], "probe": len(cfg.seeds) + len(replicate),
        "aggregate_training": 1, "aggregate_probes": 1, "claims": 1,
        "aggregate_training_replicate": 1, "aggregate_probes_replicate": 1, "claims_replicate": 1,
        "replication": 1, "replicate": 1}
    runs = re.findall(r"results/runs/tiny/K\d+/\w+/(seed[\d-]+)/metrics\.parquet", text)
    groups = {"seed" + "-".join(map(str, cfg.seeds)), "seed" + "-".join(map(str, replicate))}
    assert set(runs) == groups  # seeds_per_job 2: one group per seed set
    probes = set(re.findall(r"results/logs/tiny/probe/seed(\d+)\.log", text))
    assert probes == {str(s) for s in [*cfg.seeds, *replicate]}
    for output in ("results/replicate/metrics/training.parquet",
                   "results/replicate/metrics/probe_summary.parquet",
                   "results/replicate/tables/claims.csv", "results/tables/claims_replicated.md",
                   "results/tables/claims_replicated.csv"):
        assert output in text, output


def test_in_process_tiny_config_compiles_the_pipeline_programs():
    """conftest's tiny config and TINY differ only where compiled programs do not (seeds, horizons,
    schemes, probe, intervals), so in-process tests and subprocess jobs share compiled programs."""
    from conftest import tiny_config

    tiny, pipeline = tiny_config().to_dict(), load_config_dict(TINY)
    for section in ("env", "network", "agent", "meta"):
        assert tiny[section] == pipeline[section], section
    assert tiny["train"]["inner_updates_per_interval"] == pipeline["train"]["inner_updates_per_interval"]
    assert tiny["train"]["dtype"] == pipeline["train"]["dtype"]


def test_lint_is_clean(tmp_path):
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, "--lint")
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


@pytest.mark.parametrize("config_file", ["config.yaml", "config/paper.yaml", "config/estimators.yaml",
                                         "config/intervention.yaml", "config/published.yaml"])
def test_dry_run_lists_exactly_the_expected_jobs_for_the_shipped_configs(tmp_path, config_file):
    workdir = copy_workflow(tmp_path)
    args = ["-n"] if config_file == "config.yaml" else ["-n", "--configfile", str(ROOT / config_file)]
    counts = job_counts(snakemake(workdir, *args))
    assert counts == expected_jobs(ROOT / config_file)


@pytest.mark.parametrize(
    "change, key",
    [
        ({"horizonz": [1]}, "horizonz"),
        ({"horizons": [0, 1]}, "horizons"),
        ({"schemes": {"mix": {"kind": "median"}}}, "schemes.mix.kind"),
        ({"seeds": []}, "seeds"),
        ({"replication": {"seed_offset": 1}}, "replication.seed_offset"),  # seed 1 in both sets
        ({"seeds": [0, 1000]}, "replication.seed_offset"),  # the default offset, section left out
    ],
)
def test_invalid_config_fails_before_any_job_with_the_key(tmp_path, change, key):
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, config={**TINY, **change}, check=False)
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


def test_analysis_rules_get_the_schemes_in_config_order(tmp_path):
    """The order of the schemes decides which of two aliases is trained (estimators.scheme_aliases):
    the analysis commands must see the config's order, not a sorted one (paper.yaml: uniform is
    trained at K = 2 and lambda_0.5 is its alias)."""
    import json
    import shlex

    from mgrl.estimators import scheme_aliases

    workdir = copy_workflow(tmp_path)
    config_file = ROOT / "config" / "paper.yaml"
    proc = snakemake(workdir, "-n", "--printshellcmds", "--configfile", str(config_file))
    command = next(line for line in (proc.stdout + proc.stderr).splitlines()
                   if "mgrl aggregate training" in line)
    words = shlex.split(command.split("python -m mgrl", 1)[1])
    seen = json.loads(words[words.index("--config-json") + 1])
    shipped = yaml.safe_load(config_file.read_text())
    assert list(seen["schemes"]) == list(shipped["schemes"])
    assert scheme_aliases(load_config(config_file))[(2, "lambda_0.5")] == "uniform"
