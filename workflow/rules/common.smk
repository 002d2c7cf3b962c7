# Config validation, job lists and input functions. No computation happens here.
import json
import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from mgrl.code import ANALYSIS_MODULES, PROBE_MODULES, TRAINING_MODULES, module_paths  # noqa: E402
from mgrl.config import BASELINE_SCHEME, ConfigError, config_from_dict  # noqa: E402
from mgrl.figures import FIGURES, figure_inputs  # noqa: E402

# mgrl's own check first: its messages name the offending dotted key; then the JSON schema
# (types, descriptions, defaults), which also fills in defaults.
try:
    CFG = config_from_dict(config)
except ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
validate(config, schema="../schemas/config.schema.yaml")

NAME = CFG.name
RUNS = f"results/runs/{NAME}"
PROBES = f"results/probes/{NAME}"
LOGS = f"results/logs/{NAME}"
SCHEMES = list(CFG.schemes)
SCHEMES_ARG = ",".join(SCHEMES)
# The source files each stage runs are inputs of its rules: editing them reruns that stage and
# everything downstream (training code: training, probes, aggregates, claims, figures; analysis
# code: aggregates, claims, figures; one figure's module: that figure).
PACKAGE = os.path.join(workflow.basedir, "src", "mgrl")
TRAINING_CODE = module_paths(TRAINING_MODULES, PACKAGE)
PROBE_CODE = module_paths(PROBE_MODULES, PACKAGE)
ANALYSIS_CODE = module_paths(ANALYSIS_MODULES, PACKAGE)
# Jobs run `python -m mgrl` from this checkout's src/ (installed or not, local or on a cluster node,
# where the job re-reads this file before running its command).
shell.prefix(f'export PYTHONPATH="{workflow.basedir}/src${{{{PYTHONPATH:+:$PYTHONPATH}}}}"; ')


def seed_groups():
    """Seeds in job-sized groups (config seeds_per_job); a group's name lists its seeds."""
    seeds, size = list(CFG.seeds), CFG.seeds_per_job
    return ["seed" + "-".join(map(str, seeds[i : i + size])) for i in range(0, len(seeds), size)]


def group_seeds(group):
    return [int(s) for s in group.removeprefix("seed").split("-")]


def group_of(seed):
    (group,) = [g for g in seed_groups() if int(seed) in group_seeds(g)]
    return group


def probe_outputs(kind):
    return [f"{PROBES}/seed{seed}/{kind}.parquet" for seed in CFG.seeds]


def run_config_json(wildcards):
    """Exactly the settings one training job depends on (see ExperimentConfig.for_run)."""
    run = CFG.for_run(int(wildcards.horizon), wildcards.scheme, tuple(group_seeds(wildcards.group)))
    return json.dumps(run.to_dict(), sort_keys=True)


def probe_config_json(wildcards):
    """The experiment config with this seed only: adding seeds leaves existing probes untouched."""
    import dataclasses

    return json.dumps(dataclasses.replace(CFG, seeds=(int(wildcards.seed),)).to_dict(), sort_keys=True)


def final_outputs():
    figures = [f"results/figures/{name}.png" for name in FIGURES]
    tables = ["results/tables/claims.md", "results/tables/claims.csv",
              "results/tables/learning.csv", "results/tables/estimators.csv",
              "results/tables/variance_reduction.csv"]
    return figures + tables


wildcard_constraints:
    horizon=r"\d+",
    scheme="|".join(map(re.escape, SCHEMES + [BASELINE_SCHEME])),
    group=r"seed\d+(-\d+)*",
    seed=r"\d+",


# ---- Analysis settings, scheme aliases and the gamma-sensitivity sweep (issue 10). ----
from mgrl.config import (analysis_config_from_dict, extra_estimators, format_aliases,  # noqa: E402
                         scheme_aliases, sensitivity_schemes)

ANALYSIS_CFG = analysis_config_from_dict(config)  # already checked by config_from_dict above
# (K, scheme) -> the scheme trained in its place: schemes with identical weights at K are one
# estimator, trained once (all schemes at K = 1; e.g. lambda_0.5 and uniform at K = 2).
ALIASES = scheme_aliases(CFG)
ALIASES_ARG = format_aliases(ALIASES)
# bmg and own-outer-critic schemes: compared with last and uniform (claims E1, E2), not as mixing.
EXTRA_ESTIMATORS_ARG = ",".join(extra_estimators(CFG))
# The a2c baseline at each fixed gamma of `sensitivity.gammas` (the one equal to agent.gamma_init
# is the a2c run itself); they reuse the `train` rule under the scheme wildcard a2c_gamma<g>.
SENSITIVITY_SCHEMES = sensitivity_schemes(CFG, ANALYSIS_CFG)


def distinct_training_runs():
    """(horizon, scheme) of every meta-learning job plus a2c, each distinct estimator once."""
    runs = [(1, BASELINE_SCHEME)]
    for horizon in CFG.horizons:
        for scheme in SCHEMES:
            custom = CFG.schemes[scheme].kind == "custom"
            if (horizon, scheme) in ALIASES or custom and len(CFG.schemes[scheme].weights) != horizon:
                continue
            runs.append((horizon, scheme))
    return runs


def distinct_training_outputs():
    return [f"{RUNS}/K{h}/{s}/{g}/metrics.parquet" for h, s in distinct_training_runs()
            for g in seed_groups()]


def sensitivity_outputs():
    return [f"{RUNS}/K1/{s}/{g}/metrics.parquet" for s in SENSITIVITY_SCHEMES for g in seed_groups()]


wildcard_constraints:
    scheme="|".join(map(re.escape, SCHEMES + [BASELINE_SCHEME] + SENSITIVITY_SCHEMES)),
