# Meta-gradient estimator statistics for every (K, scheme) on the same saved a2c states of a seed.


rule probe:
    """Draw meta-gradient samples of every (K, scheme) on one seed's saved a2c states."""
    input:
        run=lambda wc: f"{RUNS}/K1/{BASELINE_SCHEME}/{group_of(wc.seed)}/metrics.parquet",
        code=PROBE_CODE,
    output:
        summary=f"{PROBES}/seed{{seed}}/summary.parquet",
        samples=f"{PROBES}/seed{{seed}}/samples.parquet",
    log:
        f"{LOGS}/probe/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/probe/seed{{seed}}.tsv"
    params:
        probe_config=probe_config_json,
        run_dir=lambda wc, input: os.path.dirname(input.run),
        out_dir=lambda wc, output: os.path.dirname(output.summary),
    threads: 1
    resources:
        mem_mb=6000,
        runtime=120,
        gpu=0,
    conda:
        JAX_ENVS["probe"]
    shell:
        "python -m mgrl probe --config-json {params.probe_config:q} --run {params.run_dir} "
        "--seed {wildcards.seed} --out {params.out_dir} > {log} 2>&1"
