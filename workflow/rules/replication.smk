# Replication on a disjoint seed set: the same experiment trained and probed on the replicate seeds
# (seeds + replication.seed_offset; the `train` and `probe` rules, other seed groups), aggregated
# and tabulated under results/<name>/replicate/ (aggregate.smk), and its claims beside the primary
# ones in results/<name>/tables/claims_replicated.{md,csv}, and the seeds each margin claim needs
# (pooled over both sets) in results/<name>/tables/seeds_needed.{md,csv}.
# Not part of `all`: `snakemake --cores 2 replicate` asks for it.


rule replication:
    """Each claim's verdict on both seed sets, and whether the replicate seeds give the same one."""
    input:
        primary=f"{SEED_SET_RESULTS['primary']}/tables/claims.csv",
        replicate=f"{SEED_SET_RESULTS['replicate']}/tables/claims.csv",
        code=ANALYSIS_CODE,
    output:
        md=f"{RESULTS}/tables/claims_replicated.md",
        csv=f"{RESULTS}/tables/claims_replicated.csv",
        seeds_md=f"{RESULTS}/tables/seeds_needed.md",
        seeds_csv=f"{RESULTS}/tables/seeds_needed.csv",
    log:
        f"{LOGS}/replication.log",
    params:
        config=CONFIG_JSON,
    group:
        ANALYSIS_GROUPS["replicate"]
    conda:
        "../../envs/mgrl.yaml"
    shell:
        "python -m mgrl replication --config-json {params.config:q} --primary {input.primary} "
        "--replicate {input.replicate} --out-md {output.md} --out-csv {output.csv} "
        "--seeds-md {output.seeds_md} --seeds-csv {output.seeds_csv} > {log} 2>&1"


if REPRODUCTION.authors_runs is not None:

    rule reproduction_replicated:
        """Each comparison with the authors' runs on both seed sets: does its verdict replicate?"""
        input:
            primary=f"{SEED_SET_RESULTS['primary']}/tables/reproduction.csv",
            replicate=f"{SEED_SET_RESULTS['replicate']}/tables/reproduction.csv",
            code=REPRODUCTION_CODE,
        output:
            f"{RESULTS}/tables/reproduction_replicated.md",
        log:
            f"{LOGS}/reproduction_replicated.log",
        group:
            ANALYSIS_GROUPS["replicate"]
        conda:
            "../../envs/mgrl.yaml"
        shell:
            "python -m mgrl reproduction-replicated --primary {input.primary} "
            "--replicate {input.replicate} --out {output} > {log} 2>&1"


rule replicate:
    """The replication table (and, before it, the replicate seeds' runs, probes and claims)."""
    input:
        rules.replication.output,
        ([f"{RESULTS}/tables/reproduction_replicated.md"] if REPRODUCTION.authors_runs is not None
         else []),
