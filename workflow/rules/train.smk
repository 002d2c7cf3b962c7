# One training job per (horizon, scheme, seed group); resumes from its checkpoints when rerun.


rule train:
    """Train one (K, scheme) for a group of seeds (vmapped); metrics.parquet per job."""
    input:
        code=TRAINING_CODE,
    output:
        f"{RUNS}/K{{horizon}}/{{scheme}}/{{group}}/metrics.parquet",
    log:
        f"{LOGS}/train/K{{horizon}}_{{scheme}}_{{group}}.log",
    benchmark:
        f"{BENCHMARKS}/train/K{{horizon}}_{{scheme}}_{{group}}.tsv"
    params:
        run_config=run_config_json,
        seeds=lambda wc: " ".join(f"--seed {s}" for s in group_seeds(wc.group)),
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=0,
    conda:
        JAX_ENVS["train"]
    shell:
        "python -m mgrl train --config-json {params.run_config:q} --horizon {wildcards.horizon} "
        "--scheme {wildcards.scheme} {params.seeds} --out {params.out_dir} --progress lines "
        "> {log} 2>&1"
