# Per-job Parquet files -> one dataset per kind, summary tables (mean, 95% CI over seeds) and the
# claims table (also as HTML in the Snakemake report). Each command reads the config itself.
# One set of these rules per seed set (common.smk SEED_SETS): `seeds` writes under results/<name>/
# (rules aggregate_training, aggregate_probes, claims), the replicate seeds under
# results/<name>/replicate/ (the same rules with the suffix _replicate; target `replicate`,
# workflow/rules/replication.smk).

for _set, _seeds in SEED_SETS.items():
    _root = SEED_SET_RESULTS[_set]
    _suffix = "" if _set == "primary" else f"_{_set}"
    _group = ANALYSIS_GROUPS[_set]

    rule:
        """Concatenate the training runs; final return per (K, scheme) with CIs over seeds."""
        name:
            f"aggregate_training{_suffix}"
        input:
            runs=distinct_training_outputs(_seeds),
            code=ANALYSIS_CODE,
        output:
            dataset=f"{_root}/metrics/training.parquet",
            table=f"{_root}/tables/learning.csv",
            **intervention_tables(_root),
        log:
            f"{LOGS}/aggregate_training{_suffix}.log",
        params:
            config=CONFIG_JSON,
        group:
            _group
        conda:
            "../../envs/mgrl.yaml"
        shell:
            "python -m mgrl aggregate training --config-json {params.config:q} --inputs {input.runs} "
            "--out {output.dataset} --table {output.table} "
            + ("{output.intervention} {output.intervention_md} " if intervention_tables(_root) else "")
            + "> {log} 2>&1"

    rule:
        """Concatenate the probes; estimator statistics and variance reduction per (K, scheme)."""
        name:
            f"aggregate_probes{_suffix}"
        input:
            summaries=probe_outputs("summary", _seeds),
            samples=probe_outputs("samples", _seeds),
            code=ANALYSIS_CODE,
        output:
            dataset=f"{_root}/metrics/probe_summary.parquet",
            samples=f"{_root}/metrics/probe_samples.parquet",
            estimators=f"{_root}/tables/estimators.csv",
            reduction=f"{_root}/tables/variance_reduction.csv",
        log:
            f"{LOGS}/aggregate_probes{_suffix}.log",
        params:
            config=CONFIG_JSON,
        group:
            _group
        conda:
            "../../envs/mgrl.yaml"
        shell:
            "python -m mgrl aggregate probes --config-json {params.config:q} "
            "--inputs {input.summaries} --samples {input.samples} "
            "--out {output.dataset} --out-samples {output.samples} "
            "--table {output.estimators} {output.reduction} > {log} 2>&1"

    rule:
        """The claims table: C1-C5 (and E1, E2) with CIs, verdicts, criteria and power."""
        name:
            f"claims{_suffix}"
        input:
            training=f"{_root}/metrics/training.parquet",
            probes=f"{_root}/metrics/probe_summary.parquet",
            # the primary seeds' fixed-gamma runs fix the return margin of both seed sets
            sensitivity=f"{RESULTS}/tables/gamma_sensitivity.csv",
            code=ANALYSIS_CODE,
        output:
            md=f"{_root}/tables/claims.md",
            csv=f"{_root}/tables/claims.csv",
            # the report shows the primary seeds' table (the replicate's is in claims_replicated)
            html=(
                report(f"{_root}/tables/claims.html", caption="../report/claims.rst", category="Tables")
                if _set == "primary"
                else f"{_root}/tables/claims.html"
            ),
        log:
            f"{LOGS}/claims{_suffix}.log",
        params:
            config=CONFIG_JSON,
        group:
            _group
        conda:
            "../../envs/mgrl.yaml"
        shell:
            "python -m mgrl claims --config-json {params.config:q} --training {input.training} "
            "--probe-summary {input.probes} --sensitivity {input.sensitivity} "
            "--out-md {output.md} --out-csv {output.csv} "
            "--out-html {output.html} > {log} 2>&1"

    if REPRODUCTION.authors_runs is not None:

        rule:
            """Ours against the authors' per-run curves at reproduction.updates: the table, the
            outer-critic gamma gaps and the figure (mgrl.reproduction)."""
            name:
                f"reproduction{_suffix}"
            input:
                training=f"{_root}/metrics/training.parquet",
                authors=AUTHORS_RUNS,
                # the primary seeds' fixed-gamma runs fix the return margin of both seed sets
                margin_runs=[f"{RESULTS}/metrics/training.parquet",
                             f"{RESULTS}/metrics/sensitivity.parquet"],
                code=REPRODUCTION_CODE,
            output:
                md=f"{_root}/tables/reproduction.md",
                csv=f"{_root}/tables/reproduction.csv",
                gaps=f"{_root}/tables/reproduction_gaps.csv",
                png=f"{_root}/figures/reproduction.png",
                pdf=f"{_root}/figures/reproduction.pdf",
            log:
                f"{LOGS}/reproduction{_suffix}.log",
            params:
                config=CONFIG_JSON,
            group:
                _group
            conda:
                "../../envs/mgrl.yaml"
            shell:
                "python -m mgrl reproduction --config-json {params.config:q} "
                "--training {input.training} --authors {input.authors} --out-md {output.md} "
                "--out-csv {output.csv} --out-gaps {output.gaps} --figure {output.png} "
                "--margin-runs {input.margin_runs} > {log} 2>&1"
