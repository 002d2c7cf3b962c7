# Per-job Parquet files -> one dataset per kind, summary tables (mean, 95% CI over seeds) and the
# claims table (also as HTML in the Snakemake report).


rule aggregate_training:
    input:
        runs=distinct_training_outputs(),
        code=ANALYSIS_CODE,
    output:
        dataset="results/metrics/training.parquet",
        table="results/tables/learning.csv",
    log:
        f"{LOGS}/aggregate_training.log",
    params:
        schemes=SCHEMES_ARG,
        aliases=ALIASES_ARG,
    conda:
        "../../envs/mgrl.yaml"
    shell:
        "python -m mgrl aggregate training --inputs {input.runs} --out {output.dataset} "
        "--table {output.table} --schemes {params.schemes} --aliases={params.aliases:q} > {log} 2>&1"


rule aggregate_probes:
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
        schemes=SCHEMES_ARG,
        aliases=ALIASES_ARG,
        extra=EXTRA_ESTIMATORS_ARG,
    conda:
        "../../envs/mgrl.yaml"
    shell:
        "python -m mgrl aggregate probes --inputs {input.summaries} --samples {input.samples} "
        "--out {output.dataset} --out-samples {output.samples} "
        "--table {output.estimators} {output.reduction} --schemes {params.schemes} "
        "--aliases={params.aliases:q} --extra-estimators={params.extra:q} > {log} 2>&1"


rule claims:
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
        schemes=SCHEMES_ARG,
        aliases=ALIASES_ARG,
        extra=EXTRA_ESTIMATORS_ARG,
        return_margin=ANALYSIS_CFG.claims.return_margin,
    conda:
        "../../envs/mgrl.yaml"
    shell:
        "python -m mgrl claims --training {input.training} --probe-summary {input.probes} "
        "--schemes {params.schemes} --aliases={params.aliases:q} "
        "--extra-estimators={params.extra:q} --return-margin {params.return_margin} "
        "--out-md {output.md} --out-csv {output.csv} "
        "--out-html {output.html} > {log} 2>&1"
