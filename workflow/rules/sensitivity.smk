# Gamma sensitivity: the a2c baseline at each fixed gamma of `sensitivity.gammas` (trained by the
# `train` rule as scheme a2c_gamma<g>), tabulated with the meta-learned runs' final gammas.


rule aggregate_sensitivity:
    """Final return against gamma: the fixed-gamma a2c runs beside every meta-learned run."""
    input:
        runs=sensitivity_outputs(),
        training=f"{RESULTS}/metrics/training.parquet",
        code=ANALYSIS_CODE,
    output:
        dataset=f"{RESULTS}/metrics/sensitivity.parquet",
        table=f"{RESULTS}/tables/gamma_sensitivity.csv",
        html=report(
            f"{RESULTS}/tables/gamma_sensitivity.html",
            caption="../report/gamma_sensitivity_table.rst",
            category="Tables",
        ),
    log:
        f"{LOGS}/aggregate_sensitivity.log",
    params:
        config=CONFIG_JSON,
    group:
        ANALYSIS_GROUPS["primary"]
    conda:
        "../../envs/mgrl.yaml"
    shell:
        "python -m mgrl aggregate sensitivity --config-json {params.config:q} "
        "--inputs {input.runs} --training {input.training} --out {output.dataset} "
        "--table {output.table} {output.html} > {log} 2>&1"
