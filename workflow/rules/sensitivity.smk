# Gamma sensitivity: the a2c baseline at each fixed gamma of `sensitivity.gammas` (trained by the
# `train` rule as scheme a2c_gamma<g>), tabulated with the meta-learned runs' final gammas.


rule aggregate_sensitivity:
    """Final return against gamma: the fixed-gamma a2c runs beside every meta-learned run."""
    input:
        runs=sensitivity_outputs(),
        training="results/metrics/training.parquet",
        code=ANALYSIS_CODE,
    output:
        dataset="results/metrics/sensitivity.parquet",
        table="results/tables/gamma_sensitivity.csv",
        html=report(
            "results/tables/gamma_sensitivity.html",
            caption="../report/gamma_sensitivity_table.rst",
            category="Tables",
        ),
    log:
        f"{LOGS}/aggregate_sensitivity.log",
    params:
        config=CONFIG_JSON,
    conda:
        "../../envs/mgrl.yaml"
    shell:
        "python -m mgrl aggregate sensitivity --config-json {params.config:q} "
        "--inputs {input.runs} --training {input.training} --out {output.dataset} "
        "--table {output.table} {output.html} > {log} 2>&1"
