# Per-job Parquet files -> one dataset per kind, summary tables (mean, 95% CI over seeds) and the
# claims table (also as HTML in the Snakemake report). Each command reads the config itself.


rule aggregate_training:
    """Concatenate the training runs; final return per (K, scheme) with CIs over seeds."""
    input:
        runs=distinct_training_outputs(),
        code=ANALYSIS_CODE,
    output:
        dataset="results/metrics/training.parquet",
        table="results/tables/learning.csv",
    log:
        f"{LOGS}/aggregate_training.log",
    params:
        config=CONFIG_JSON,
    conda:
        "../../envs/mgrl.yaml"
    shell:
        "python -m mgrl aggregate training --config-json {params.config:q} --inputs {input.runs} "
        "--out {output.dataset} --table {output.table} > {log} 2>&1"


rule aggregate_probes:
    """Concatenate the probes; estimator statistics and variance reduction per (K, scheme)."""
    input:
        summaries=probe_outputs("summary"),
        samples=probe_outputs("samples"),
        code=ANALYSIS_CODE,
    output:
        dataset="results/metrics/probe_summary.parquet",
        samples="results/metrics/probe_samples.parquet",
        estimators="results/tables/estimators.csv",
        reduction="results/tables/variance_reduction.csv",
    log:
        f"{LOGS}/aggregate_probes.log",
    params:
        config=CONFIG_JSON,
    conda:
        "../../envs/mgrl.yaml"
    shell:
        "python -m mgrl aggregate probes --config-json {params.config:q} "
        "--inputs {input.summaries} --samples {input.samples} "
        "--out {output.dataset} --out-samples {output.samples} "
        "--table {output.estimators} {output.reduction} > {log} 2>&1"


rule claims:
    """The claims table: C1-C5 (and E1, E2) with CIs, verdicts, criteria and power."""
    input:
        training="results/metrics/training.parquet",
        probes="results/metrics/probe_summary.parquet",
        code=ANALYSIS_CODE,
    output:
        md="results/tables/claims.md",
        csv="results/tables/claims.csv",
        html=report("results/tables/claims.html", caption="../report/claims.rst", category="Tables"),
    log:
        f"{LOGS}/claims.log",
    params:
        config=CONFIG_JSON,
    conda:
        "../../envs/mgrl.yaml"
    shell:
        "python -m mgrl claims --config-json {params.config:q} --training {input.training} "
        "--probe-summary {input.probes} --out-md {output.md} --out-csv {output.csv} "
        "--out-html {output.html} > {log} 2>&1"
