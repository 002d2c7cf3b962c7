"""The real Snakefile without running the pipeline: lint, exact dry-run job lists of the shipped
configs and of the sensitivity sweep, and bad configs that fail before any job starts.

Separate from tests/test_pipeline.py (whose module fixture runs the tiny pipeline) so that
pytest-xdist runs these beside it. Each test copies the workflow into a temporary folder.
"""

from __future__ import annotations

import pytest
import yaml

from mgrl.config import load_config
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


@pytest.mark.parametrize("config_file", ["config.yaml", "config/paper.yaml", "config/estimators.yaml"])
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
    ],
)
def test_invalid_config_fails_before_any_job_with_the_key(tmp_path, change, key):
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, config={**TINY, **change}, check=False)
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()
