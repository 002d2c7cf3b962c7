# Gamma sensitivity: the a2c baseline at each fixed gamma of `sensitivity.gammas` (trained by the
# `train` rule as scheme a2c_gamma<g>), tabulated with the meta-learned runs' final gammas.


rule aggregate_sensitivity:
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
        schemes=SCHEMES_ARG,
    conda:
        "../../envs/mgrl.yaml"
    shell:
        "python -m mgrl aggregate sensitivity --inputs {input.runs} --training {input.training} "
        "--out {output.dataset} --table {output.table} {output.html} --schemes {params.schemes} "
        "> {log} 2>&1"
