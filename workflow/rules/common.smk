# Config validation, job lists and input functions. No computation happens here.
import json
import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from mgrl.code import ANALYSIS_MODULES, PROBE_MODULES, TRAINING_MODULES, module_paths  # noqa: E402
from mgrl.config import (ConfigError, analysis_config_from_dict, check_replication,  # noqa: E402
                         check_reproduction, config_from_dict, replicate_seeds)
from mgrl.claim_support import intervention_arms  # noqa: E402
from mgrl.runs import (BASELINE_SCHEME, distinct_training_runs, resolved,  # noqa: E402
                       run_config, sensitivity_schemes)
from mgrl.figures import FIGURES, figure_inputs, figures_for  # noqa: E402

# mgrl's own check first: its messages name the offending dotted key; then the JSON schema
# generated from the same settings classes (python -m mgrl schema), which fills in defaults.
try:
    CFG = config_from_dict(config)
    ANALYSIS_CFG = analysis_config_from_dict(config)
    check_replication(CFG.seeds, ANALYSIS_CFG.replication)  # also when the section is left out
    check_reproduction(CFG, ANALYSIS_CFG.reproduction, workflow.basedir)
except ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
validate(config, schema="../schemas/config.schema.yaml")

NAME = CFG.name
# Every output of the experiment lies under results/<name>/ (the config's `name`), so experiments
# with other names coexist in one checkout and a run of one never touches another's files.
RESULTS = f"results/{NAME}"
RUNS = f"{RESULTS}/runs"
PROBES = f"{RESULTS}/probes"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
# The whole config, as the analysis rules read it (schemes, aliases, extra estimators, margins);
# keys in config order: the order of the schemes decides which of two aliases is trained.
CONFIG_JSON = json.dumps(config)
# The source files each stage runs are inputs of its rules: editing them reruns that stage and
# everything downstream (training code: training, probes, aggregates, claims, figures; analysis
# code: aggregates, claims, figures; one figure's module: that figure).
PACKAGE = os.path.join(workflow.basedir, "src", "mgrl")
TRAINING_CODE = module_paths(TRAINING_MODULES, PACKAGE)
PROBE_CODE = module_paths(PROBE_MODULES, PACKAGE)
ANALYSIS_CODE = module_paths(ANALYSIS_MODULES, PACKAGE)
# The comparison with the authors' runs (config section reproduction): its own modules, so editing
# it reruns that comparison only.
REPRODUCTION = ANALYSIS_CFG.reproduction
AUTHORS_RUNS = (os.path.join(workflow.basedir, REPRODUCTION.authors_runs)
                if REPRODUCTION.authors_runs is not None else None)
REPRODUCTION_CODE = module_paths(("reproduction", "stats", "runs", "io", "figures.reproduction",
                                  "figures.common"), PACKAGE)
# Jobs run `python -m mgrl` from this checkout's src/ (installed or not, local or on a cluster node,
# where the job re-reads this file before running its command).
shell.prefix(f'export PYTHONPATH="{workflow.basedir}/src${{{{PYTHONPATH:+:$PYTHONPATH}}}}"; ')

# Every distinct (K, scheme) once (schemes that coincide at K are trained once: all weightings at
# K = 1), plus the a2c baseline and, per fixed gamma of `sensitivity.gammas` other than
# agent.gamma_init, the baseline at that gamma (scheme wildcard a2c_gamma<g>).
TRAINING_RUNS = distinct_training_runs(CFG)
SENSITIVITY_SCHEMES = sensitivity_schemes(CFG, ANALYSIS_CFG.sensitivity.gammas)
# Two disjoint seed sets of the same experiment, each with its own aggregates and claims under its
# results folder: `seeds` (the default target; RESULTS) and the replicate seeds, seeds +
# replication.seed_offset (target `replicate`; RESULTS/replicate). Their training and probe jobs are
# the same rules, told apart by the seeds in their paths.
REPLICATE_SEEDS = replicate_seeds(CFG.seeds, ANALYSIS_CFG.replication)
SEED_SETS = {"primary": CFG.seeds, "replicate": REPLICATE_SEEDS}
SEED_SET_RESULTS = {"primary": RESULTS, "replicate": f"{RESULTS}/replicate"}
# On a cluster (profiles/slurm) the analysis rules of a seed set (aggregates, claims, figures, the
# replication table: seconds each) run together as one job of this group; local runs ignore groups.
# The replicate's have their own, so the figures do not wait for the replicate seeds' training.
ANALYSIS_GROUPS = {"primary": "report", "replicate": "replication"}


def asks_for_gpu(rule):
    """Whether --set-resources (profiles/slurm's set-resources) gives ``rule`` a GPU."""
    gpu = workflow.resource_settings.overwrite_resources.get(rule, {}).get("gpu")
    return getattr(gpu, "value", gpu) not in (None, 0, "0")


# The conda environment (--software-deployment-method conda) of the rules that run jax: CUDA jax
# (envs/mgrl-gpu.yaml) for train and probe when they ask for a GPU, CPU jax (envs/mgrl.yaml)
# otherwise. Cluster jobs re-read this file with the same --set-resources and pick the same one.
JAX_ENVS = {rule: "../../envs/mgrl-gpu.yaml" if asks_for_gpu(rule) else "../../envs/mgrl.yaml"
            for rule in ("train", "probe")}


wildcard_constraints:
    horizon=r"\d+",
    scheme="|".join(map(re.escape, list(CFG.schemes) + [BASELINE_SCHEME] + SENSITIVITY_SCHEMES)),
    group=r"seed\d+(-\d+)*",
    seed=r"\d+",


def seed_groups(seeds=CFG.seeds):
    """``seeds`` in job-sized groups (config seeds_per_job); a group's name lists its seeds."""
    seeds, size = list(seeds), CFG.seeds_per_job
    return ["seed" + "-".join(map(str, seeds[i : i + size])) for i in range(0, len(seeds), size)]


def group_seeds(group):
    return [int(s) for s in group.removeprefix("seed").split("-")]


def group_of(seed):
    """The training group of ``seed``, in whichever seed set holds it."""
    (group,) = [g for seeds in SEED_SETS.values() for g in seed_groups(seeds)
                if int(seed) in group_seeds(g)]
    return group


def probe_outputs(kind, seeds=CFG.seeds):
    return [f"{PROBES}/seed{seed}/{kind}.parquet" for seed in seeds]


def run_config_json(wildcards):
    """Exactly the settings one training job depends on (mgrl.runs.run_config)."""
    run = run_config(CFG, int(wildcards.horizon), wildcards.scheme, group_seeds(wildcards.group))
    return json.dumps(run.to_dict(), sort_keys=True)


def probe_config_json(wildcards):
    """The experiment config with this seed only (adding seeds leaves existing probes untouched),
    every scheme's defaults filled in (mgrl.runs.resolved)."""
    import dataclasses

    probe_cfg = dataclasses.replace(resolved(CFG), seeds=(int(wildcards.seed),))
    return json.dumps(probe_cfg.to_dict(), sort_keys=True)


def distinct_training_outputs(seeds=CFG.seeds):
    return [f"{RUNS}/K{h}/{s}/{g}/metrics.parquet" for h, s in TRAINING_RUNS
            for g in seed_groups(seeds)]


def sensitivity_outputs():
    return [f"{RUNS}/K1/{s}/{g}/metrics.parquet" for s in SENSITIVITY_SCHEMES for g in seed_groups()]


def intervention_tables(root):
    """The intervention table (CSV, Markdown) under ``root``, when the config has intervention
    arms (:func:`mgrl.claim_support.intervention_arms`); else none."""
    if not intervention_arms(CFG):
        return {}
    return {"intervention": f"{root}/tables/intervention.csv",
            "intervention_md": f"{root}/tables/intervention.md"}


def final_outputs():
    figures = [f"{RESULTS}/figures/{name}.png" for name in figures_for(CFG)]
    tables = [f"{RESULTS}/tables/{name}" for name in ("claims.md", "claims.csv", "learning.csv",
                                                      "estimators.csv", "variance_reduction.csv")]
    reproduction = ([f"{RESULTS}/tables/reproduction.md", f"{RESULTS}/figures/reproduction.png"]
                    if REPRODUCTION.authors_runs is not None else [])
    return figures + tables + list(intervention_tables(RESULTS).values()) + reproduction
