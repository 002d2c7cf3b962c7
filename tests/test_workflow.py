"""The real Snakefile without running the pipeline: lint, exact dry-run job lists of the shipped
configs, of the sensitivity sweep and of the replicate target, bad configs that fail before any
job starts, the SLURM profile's GPU requests and job groups, and the GPU conda environment.

Separate from tests/test_pipeline.py (whose module fixture runs the tiny pipeline) so that
pytest-xdist runs these beside it. Each test copies the workflow into a temporary folder.
"""

from __future__ import annotations

import re

import pytest
import yaml

from mgrl.config import AnalysisConfig, load_config
from mgrl.figures import figures_for
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
        assert f"results/tiny/runs/K1/a2c_gamma{gamma}/seed0-1/metrics.parquet" in text
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
    # too (train, probe, their aggregates, claims, and the sensitivity aggregate, whose gamma
    # effect fixes both seed sets' return margin; not the figures). TINY has no sensitivity sweep,
    # so the replicate seeds (as many, as many per job) need as many training jobs as the primary
    # ones.
    assert job_counts(proc) == {
        "train": 2 * primary["train"], "probe": len(cfg.seeds) + len(replicate),
        "aggregate_training": 1, "aggregate_probes": 1, "aggregate_sensitivity": 1, "claims": 1,
        "aggregate_training_replicate": 1, "aggregate_probes_replicate": 1, "claims_replicate": 1,
        "replication": 1, "replicate": 1}
    runs = re.findall(r"results/tiny/runs/K\d+/\w+/(seed[\d-]+)/metrics\.parquet", text)
    groups = {"seed" + "-".join(map(str, cfg.seeds)), "seed" + "-".join(map(str, replicate))}
    assert set(runs) == groups  # seeds_per_job 2: one group per seed set
    probes = set(re.findall(r"results/tiny/logs/probe/seed(\d+)\.log", text))
    assert probes == {str(s) for s in [*cfg.seeds, *replicate]}
    for output in ("results/tiny/replicate/metrics/training.parquet",
                   "results/tiny/replicate/metrics/probe_summary.parquet",
                   "results/tiny/replicate/tables/claims.csv", "results/tiny/tables/claims_replicated.md",
                   "results/tiny/tables/claims_replicated.csv", "results/tiny/tables/seeds_needed.md"):
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
                                         "config/intervention.yaml", "config/published.yaml",
                                         "config/authors_snake.yaml"])
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
    """The order of the schemes decides which of two aliases is trained (runs.scheme_aliases):
    the analysis commands must see the config's order, not a sorted one (paper.yaml: uniform is
    trained at K = 2 and lambda_0.5 is its alias)."""
    import json
    import shlex

    from mgrl.runs import scheme_aliases

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


def jobs_with_groups(text: str) -> list[tuple[str, str | None, str]]:
    """(rule, group job or None, resources line) of every job a dry run prints."""
    jobs, group = [], None
    for line in text.splitlines():
        if m := re.match(r"\[.*\] Group job (\S+) ", line):
            group = m.group(1)
        elif m := re.match(r"( *)(?:local)?rule (\w+):$", line):
            jobs.append([m.group(2), group if m.group(1) else None, ""])
            group = group if m.group(1) else None
        elif jobs and line.strip().startswith("resources: "):
            jobs[-1][2] = line.strip()
    return [tuple(job) for job in jobs]


@pytest.mark.parametrize("config_name", ["intervention.yaml", "authors_snake_full.yaml"])
def test_slurm_profile_gives_a_gpu_to_train_and_probe_only_and_groups_the_analysis(tmp_path,
                                                                                    config_name):
    """profiles/slurm on config/intervention.yaml (every figure, figure_meta_samples included) and
    on config/authors_snake_full.yaml (the authors' whole run, with its comparison), with the
    replicate target: train and probe ask for one GPU, no other job does; every aggregate, claims,
    comparison and figure job of the seeds runs in the group job `report`, those of the replicate
    seeds and the replication tables in `replication`."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    workdir = copy_workflow(tmp_path)
    config_file = ROOT / "config" / config_name
    proc = snakemake(workdir, "-n", "--profile", str(ROOT / "profiles" / "slurm"), "all", "replicate",
                     "--configfile", str(config_file))  # --configfile last: it takes every word after it
    jobs = jobs_with_groups(proc.stdout + proc.stderr)
    rules = {rule for rule, _, _ in jobs}
    figures = {f"figure_{f}" for f in figures_for(load_config(config_file))}
    assert figures <= rules and {"train", "probe"} <= rules
    if config_name == "intervention.yaml":
        assert "figure_meta_samples" in figures
    else:
        assert {"reproduction", "reproduction_replicate", "reproduction_replicated"} <= rules
    for rule, group, resources in jobs:
        gpu = re.search(r"\bgpu=(\d+)", resources)
        if rule in ("train", "probe"):
            assert gpu and gpu.group(1) == "1" and group is None, (rule, resources)
        else:
            assert not gpu or gpu.group(1) == "0", (rule, resources)
        if rule in figures or rule in ("aggregate_training", "aggregate_probes",
                                       "aggregate_sensitivity", "claims", "reproduction"):
            assert group == "report", rule
        elif rule.endswith(("_replicate", "_replicated")) or rule == "replication":
            assert group == "replication", rule
        else:
            assert group is None, rule


def test_train_and_probe_use_the_gpu_conda_env_exactly_when_they_ask_for_a_gpu(tmp_path):
    """The rules' conda environments (what --software-deployment-method conda would build), printed
    by a line added to the copied Snakefile: CPU jax everywhere by default; CUDA jax for train and
    probe once --set-resources gives them a GPU (as profiles/slurm does), for them only."""
    workdir = copy_workflow(tmp_path)
    with open(workdir / "Snakefile", "a") as snakefile:
        snakefile.write("\nfor _rule in workflow.rules:\n"
                        "    print('conda env', _rule.name, _rule.conda_env)\n")

    def envs(*args):
        text = snakemake(workdir, "-n", *args, config=TINY).stdout
        return dict(re.findall(r"^conda env (\w+) \S*/envs/(\S+)$", text, re.M))

    cpu = envs()
    assert cpu["train"] == cpu["probe"] == cpu["claims"] == "mgrl.yaml"
    assert set(cpu.values()) == {"mgrl.yaml"}
    gpu = envs("--set-resources", "train:gpu=1", "probe:gpu=1")
    assert gpu == {**cpu, "train": "mgrl-gpu.yaml", "probe": "mgrl-gpu.yaml"}


def test_gpu_conda_env_is_the_cpu_one_with_cuda_jax():
    """envs/mgrl-gpu.yaml (train and probe when they ask for a GPU) differs from envs/mgrl.yaml only
    in jax's CUDA extra, at the jax version of requirements.lock and of pyproject.toml's gpu extra."""
    import tomllib

    def env(name):
        return yaml.safe_load((ROOT / "envs" / name).read_text())

    cpu, gpu = env("mgrl.yaml"), env("mgrl-gpu.yaml")
    jax = next(pin for pin in cpu["dependencies"][-1]["pip"] if pin.startswith("jax=="))
    cuda = jax.replace("jax==", "jax[cuda12]==")
    assert gpu["dependencies"][-1]["pip"] == [cuda if pin == jax else pin
                                              for pin in cpu["dependencies"][-1]["pip"]]
    assert {k: v for k, v in gpu.items() if k != "dependencies"} == \
        {k: v for k, v in cpu.items() if k != "dependencies"}
    assert gpu["dependencies"][:-1] == cpu["dependencies"][:-1]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["gpu"] == [cuda]
    assert jax in (ROOT / "requirements.lock").read_text().splitlines()



OVERLAYS = sorted((ROOT / "config" / "overlays").glob("*.yaml"))


def overlay_base(overlay):
    """The config an overlay is merged into: the one its header names."""
    return ROOT / ("config.yaml" if overlay.stem == "unmasked" else "config/authors_snake.yaml")


def test_every_overlay_merged_into_its_base_is_a_valid_config_under_its_own_name():
    from mgrl.config import _deep_merge, config_from_dict

    assert len(OVERLAYS) >= 5
    for overlay in OVERLAYS:
        base = overlay_base(overlay)
        assert base.relative_to(ROOT).as_posix() in overlay.read_text(), overlay.name
        changes = yaml.safe_load(overlay.read_text())
        merged = config_from_dict(_deep_merge(yaml.safe_load(base.read_text()), changes))
        assert merged.name == changes["name"] != load_config(base).name, overlay.name


def test_an_overlay_merges_into_its_base_config_key_by_key(tmp_path):
    """A later --configfile is merged into the earlier one key by key (Snakemake): the overlay's
    run lands under its own name with its changed setting and every other setting of the base."""
    import json
    import shlex

    overlay = ROOT / "config" / "overlays" / "authors_32envs.yaml"
    base = overlay_base(overlay)
    changes = yaml.safe_load(overlay.read_text())
    target = f"results/{changes['name']}/runs/K1/mg/seed0/metrics.parquet"
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, "-n", "--printshellcmds", target, "--configfile", str(base),
                     str(overlay))  # --configfile last: it takes every word after it
    command = next(line for line in (proc.stdout + proc.stderr).splitlines()
                   if "mgrl train" in line)
    words = shlex.split(command.split("python -m mgrl", 1)[1])
    seen = json.loads(words[words.index("--config-json") + 1])  # the run's own settings
    shipped = yaml.safe_load(base.read_text())
    assert seen["name"] == changes["name"] and seen["env"]["num_envs"] == 32
    assert all(seen["env"][k] == v for k, v in shipped["env"].items() if k != "num_envs")
    assert all(seen["network"][k] == v for k, v in shipped["network"].items())
