"""Command line of the pipeline: ``python -m mgrl <command>`` (``--help`` lists them).

Every command that needs the experiment reads its config itself (``--config`` YAML or
``--config-json``, how the Snakemake rules pass exactly the config they run). Examples::

    python -m mgrl train --config config.yaml --horizon 4 --scheme uniform --seed 0 --out results/x/runs/K4/uniform/seed0
    python -m mgrl validate --config config.yaml
    python -m mgrl columns          # the metric columns as a Markdown table
    python -m mgrl schema           # the JSON schema of a config (workflow/schemas/config.schema.yaml)
    python -m mgrl config-docs      # every config key (config/README.md)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from mgrl.config import (AnalysisConfig, ConfigError, ExperimentConfig, analysis_config_from_dict,
                         config_from_dict, read_yaml)
from mgrl.runs import BASELINE_SCHEME


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", help="experiment YAML (see config.yaml)")
    group.add_argument("--config-json", help="the experiment config as one JSON object "
                       "(how the Snakemake rules pass exactly the config they run)")


def _load(args) -> tuple[ExperimentConfig, AnalysisConfig]:
    """The experiment and its analysis sections from ``--config`` or ``--config-json``."""
    if args.config_json is not None:
        try:
            raw = json.loads(args.config_json)
        except json.JSONDecodeError as err:
            raise ConfigError("<config-json>", f"not valid JSON: {err}") from err
    else:
        raw = read_yaml(args.config)
    return config_from_dict(raw), analysis_config_from_dict(raw)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mgrl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one (horizon, scheme) for one or more seeds")
    _add_config_arguments(train)
    train.add_argument("--horizon", type=int, required=True, help="K, inner steps per meta-update")
    train.add_argument("--scheme", required=True,
                       help=f"a scheme name from the config's `schemes`, or '{BASELINE_SCHEME}', or "
                            f"'{BASELINE_SCHEME}_gamma<g>' (the baseline at fixed gamma g)")
    train.add_argument("--seed", type=int, action="append", required=True,
                       help="training seed; repeat to train several seeds vmapped in one job")
    train.add_argument("--out", required=True, help="output folder (metrics.parquet, checkpoints/)")
    train.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                       help="progress bar on a terminal (auto), always (bar), or log lines")

    probe = sub.add_parser("probe", help="meta-gradient estimator statistics on saved states")
    _add_config_arguments(probe)
    probe.add_argument("--run", required=True, help="training output folder with checkpoints/")
    probe.add_argument("--seed", type=int, required=True)
    probe.add_argument("--out", required=True, help="output folder (samples/summary Parquet)")

    validate = sub.add_parser("validate", help="check a config and exit")
    _add_config_arguments(validate)

    agg = sub.add_parser("aggregate", help="concatenate Parquet files and write summary tables")
    agg.add_argument("kind", choices=("training", "probes", "sensitivity"))
    _add_config_arguments(agg)
    agg.add_argument("--inputs", nargs="*", default=[], help="per-job Parquet files (sensitivity: "
                     "the fixed-gamma runs, possibly none)")
    agg.add_argument("--samples", nargs="*", default=[], help="probes: per-seed samples Parquet")
    agg.add_argument("--training", help="sensitivity: the aggregated training dataset")
    agg.add_argument("--out", required=True, help="aggregated Parquet dataset")
    agg.add_argument("--out-samples", help="probes: aggregated samples Parquet")
    agg.add_argument("--table", nargs="+", required=True,
                     help="summary table(s): CSV; sensitivity: CSV and HTML")

    claims = sub.add_parser("claims", help="the C1-C5 claims table from aggregated data")
    _add_config_arguments(claims)
    claims.add_argument("--training", required=True)
    claims.add_argument("--probe-summary", required=True)
    claims.add_argument("--sensitivity", help="gamma_sensitivity.csv of the primary seeds: its "
                        "fixed-gamma rows give the gamma effect, and so the return margin")
    claims.add_argument("--out-md", required=True)
    claims.add_argument("--out-csv", required=True)
    claims.add_argument("--out-html", help="the table as a small HTML page (the Snakemake report)")

    replication = sub.add_parser("replication", help="the claims of the primary and the replicate "
                                 "seeds side by side: does each verdict replicate?")
    _add_config_arguments(replication)
    replication.add_argument("--primary", required=True, help="claims CSV of the config's seeds")
    replication.add_argument("--replicate", required=True,
                             help="claims CSV of the replicate seeds (seeds + replication.seed_offset)")
    replication.add_argument("--out-md", required=True)
    replication.add_argument("--out-csv", required=True)
    replication.add_argument("--seeds-md", help="the seeds each margin claim needs (Markdown)")
    replication.add_argument("--seeds-csv", help="the same as CSV")

    sweep = sub.add_parser("margin-sweep", help="the margin claims' verdicts of claims tables at "
                           "other margin fractions (delta = fraction x the gamma effect)")
    sweep.add_argument("--claims", required=True, nargs="+", help="claims CSV files (their rows "
                       "are re-decided; a column 'table' names the file)")
    sweep.add_argument("--sensitivity", required=True,
                       help="gamma_sensitivity.csv whose fixed-gamma rows give the gamma effect")
    sweep.add_argument("--fractions", type=float, nargs="+", required=True)
    sweep.add_argument("--out", help="Markdown file (default: standard output)")

    fig = sub.add_parser("figure", help="render one figure (PNG and PDF)")
    fig.add_argument("name")
    _add_config_arguments(fig)
    fig.add_argument("--training")
    fig.add_argument("--probe-summary")
    fig.add_argument("--sensitivity")
    fig.add_argument("--out", required=True, help="PNG path; the PDF goes beside it")

    columns = sub.add_parser("columns", help="print documented Parquet columns as Markdown")
    columns.add_argument("--kind", choices=("training", "probe-summary", "probe-samples"),
                         default="training")
    published = sub.add_parser("published", help="the authors' published Snake runs beside ours "
                               "(mgrl.published)")
    source = published.add_mutually_exclusive_group(required=True)
    source.add_argument("--authors-data", help="snake/data of a clone of "
                        "instadeepai/outer-value-function-meta-rl (rebuilds --authors)")
    source.add_argument("--authors", help="the authors' summary CSV made earlier with --authors-data")
    published.add_argument("--budget", type=float, default=3.0e6,
                           help="environment steps of the matched budget (with --authors-data)")
    published.add_argument("--summary-out", help="write the authors' summary CSV here")
    published.add_argument("--training", help="our training.parquet of config/published.yaml")
    published.add_argument("--out", help="write the Markdown comparison table here")
    extract = sub.add_parser("authors-runs", help="the authors' per-run return and gamma points "
                             "as one long CSV (mgrl.reproduction)")
    extract.add_argument("--authors-data", required=True, help="snake/data of a clone of "
                         "instadeepai/outer-value-function-meta-rl")
    extract.add_argument("--out", required=True, help="CSV (.csv.gz: compressed)")

    repro = sub.add_parser("reproduction", help="our runs against the authors' per-run curves at "
                           "the config's reproduction.updates (mgrl.reproduction)")
    _add_config_arguments(repro)
    repro.add_argument("--training", required=True, help="aggregated training.parquet")
    repro.add_argument("--authors", required=True, help="the extract of reproduction.authors_runs")
    repro.add_argument("--out-md", required=True)
    repro.add_argument("--out-csv", required=True)
    repro.add_argument("--out-gaps", required=True, help="the outer-critic gamma gaps (CSV)")
    repro.add_argument("--figure", help="PNG of both sides' curves over updates (PDF beside it)")
    repro.add_argument("--margin-runs", nargs="+", required=True,
                       help="the primary seeds' training and sensitivity Parquet: their "
                            "fixed-gamma a2c runs give the return margin of both seed sets")

    repl = sub.add_parser("reproduction-replicated", help="each comparison's verdict on both seed "
                          "sets side by side")
    repl.add_argument("--primary", required=True, help="reproduction CSV of the config's seeds")
    repl.add_argument("--replicate", required=True, help="reproduction CSV of the replicate seeds")
    repl.add_argument("--out", required=True, help="Markdown table")
    sub.add_parser("schema", help="print the config's JSON schema (YAML), generated from mgrl.config")
    sub.add_parser("config-docs", help="print the Markdown reference of every config key")
    return parser


def _published(args) -> None:
    import pandas as pd

    from mgrl import published
    from mgrl.io import read_parquet, write_text_atomic

    if args.authors_data:
        authors = published.authors_summary(published.read_authors_runs(args.authors_data),
                                            args.budget)
    else:
        authors = pd.read_csv(args.authors, dtype={"budget": str})
    if args.summary_out:
        write_text_atomic(args.summary_out, authors.to_csv(index=False))
    if args.training:
        table = published.comparison_table(authors, published.ours_summary(
            read_parquet(args.training)))
        if args.out:
            write_text_atomic(args.out, table)
        else:
            print(table, end="")


def _aggregate(args) -> None:
    from mgrl import analysis
    from mgrl.claim_support import intervention_arms
    from mgrl.runs import claim_roles, mixing_schemes, scheme_aliases
    from mgrl.io import read_parquet, read_parquets, write_parquet_atomic, write_text_atomic
    from mgrl.metrics import COLUMNS

    cfg, _ = _load(args)
    aliases = scheme_aliases(cfg)
    if args.kind == "sensitivity":
        frame = read_parquets(args.inputs) if args.inputs else _empty_frame(COLUMNS)
        write_parquet_atomic(frame, args.out)
        table = analysis.sensitivity_table(read_parquet(args.training), frame)
        csv_path, *html = args.table
        write_text_atomic(csv_path, table.to_csv(index=False))
        for path in html:
            write_text_atomic(path, analysis.table_html(
                table, "Final return vs gamma (fixed-gamma a2c and meta-learned runs)",
                "Mean and 95% t-CI over seeds of the final return (last quarter of training); "
                "gamma: the fixed gamma, or the meta-learned runs' final gamma (95% CI from the "
                "mean logit, inside (0, 1))."))
        return
    frame = read_parquets(args.inputs)
    write_parquet_atomic(frame, args.out)
    if args.kind == "training":
        expanded = analysis.expand_aliases(frame, aliases)
        tables = [analysis.learning_table(expanded)]
        arms = intervention_arms(cfg)
        if arms:  # the table's CSV, then its Markdown
            table = analysis.intervention_table(expanded, max(cfg.horizons), arms)
            tables.append(table)
            write_text_atomic(args.table[2], analysis.intervention_markdown(table))
    else:
        if args.out_samples:
            write_parquet_atomic(read_parquets(args.samples), args.out_samples)
        expanded = analysis.expand_aliases(frame, aliases)
        tables = [analysis.estimator_table(expanded),
                  analysis.variance_reduction_table(expanded, mixing_schemes(cfg),
                                                    claim_roles(cfg))]
    for table, path in zip(tables, args.table):
        write_text_atomic(path, table.to_csv(index=False))


def _empty_frame(columns) -> "object":
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})


def _claims(args) -> None:
    from mgrl import analysis
    import pandas as pd

    from mgrl.claim_support import claimed_schemes
    from mgrl.runs import (averaged_schemes, claim_roles, extra_estimators, meta_samples_of,
                           scheme_aliases, scheme_of)
    from mgrl.io import read_parquet, write_text_atomic

    cfg, analysis_cfg = _load(args)
    averaged = {s: (scheme_of(cfg, s).kind, meta_samples_of(cfg, s)) for s in averaged_schemes(cfg)}
    claims = analysis.claims_table(read_parquet(args.training), read_parquet(args.probe_summary),
                                   claimed_schemes(cfg), claim_roles(cfg),
                                   sensitivity=pd.read_csv(args.sensitivity) if args.sensitivity
                                   else None,
                                   margin_fraction=analysis_cfg.claims.margin_fraction,
                                   step_cosine_effect=analysis_cfg.claims.step_cosine_effect,
                                   tested=analysis_cfg.claims.tested,
                                   aliases=scheme_aliases(cfg), extra_estimators=extra_estimators(cfg),
                                   averaged=averaged)
    write_text_atomic(args.out_csv, claims.to_csv(index=False))
    write_text_atomic(args.out_md, analysis.claims_markdown(claims))
    if args.out_html:
        write_text_atomic(args.out_html, analysis.table_html(
            claims, "Claims C1-C5 (E1, E2: extra estimators): values, 95% CIs over seeds, verdicts",
            "Verdicts are holds / contradicted / inconclusive; a CI too wide to exclude the null "
            "(or the margin) is inconclusive. 'power' compares the CI's half-width with the effect "
            "size or margin the claim needs."))


def _replication(args) -> None:
    import pandas as pd

    from mgrl import analysis
    from mgrl.config import replicate_seeds
    from mgrl.io import write_text_atomic

    cfg, analysis_cfg = _load(args)
    table = analysis.replication_table(
        pd.read_csv(args.primary), pd.read_csv(args.replicate), seeds_a=cfg.seeds,
        seeds_b=replicate_seeds(cfg.seeds, analysis_cfg.replication))
    write_text_atomic(args.out_csv, table.to_csv(index=False))
    write_text_atomic(args.out_md, analysis.replication_markdown(table))
    if args.seeds_csv or args.seeds_md:
        seeds = analysis.seeds_needed_table(pd.read_csv(args.primary), pd.read_csv(args.replicate))
        if args.seeds_csv:
            write_text_atomic(args.seeds_csv, seeds.to_csv(index=False))
        if args.seeds_md:
            write_text_atomic(args.seeds_md, analysis.seeds_needed_markdown(seeds))


def _margin_sweep(args) -> None:
    import pandas as pd

    from mgrl import analysis
    from mgrl.io import write_text_atomic

    effect, effect_text = analysis.gamma_effect(pd.read_csv(args.sensitivity))
    tables = [analysis.margin_sweep(pd.read_csv(path), effect, args.fractions)
              .assign(table=path) for path in args.claims]
    table = pd.concat(tables, ignore_index=True)
    fractions = [f"{f:g}" for f in args.fractions]
    lines = [f"Margin delta = fraction x {effect_text}.", "",
             "| table | claim | measure | value | 95% CI | " + " | ".join(
                 f"{f} (delta {float(f) * effect:.3g})" for f in fractions) + " |",
             "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in fractions) + " |"]
    for r in table.to_dict("records"):
        lines.append(f"| {r['table']} | {r['claim']} | {r['measure']} | {r['value']:.3g} | "
                     f"[{r['ci_lo']:.3g}, {r['ci_hi']:.3g}] | "
                     + " | ".join(r[f] for f in fractions) + " |")
    text = "\n".join(lines) + "\n"
    if args.out:
        write_text_atomic(args.out, text)
    else:
        print(text, end="")


def _figure(args) -> None:
    import importlib

    from mgrl.analysis import expand_aliases
    from mgrl.runs import mixing_schemes, scheme_aliases
    from mgrl.figures import FIGURES
    from mgrl.io import read_parquet

    if args.name not in FIGURES:
        raise SystemExit(f"error: unknown figure '{args.name}' (known: {', '.join(FIGURES)})")
    cfg, _ = _load(args)
    module = importlib.import_module(f"mgrl.figures.{args.name}")
    aliases = scheme_aliases(cfg)
    data = {}
    for name in module.INPUTS:
        path = getattr(args, name)
        if path is None:
            raise SystemExit(f"error: figure '{args.name}' needs --{name.replace('_', '-')}")
        data[name] = read_parquet(path)
        if name in ("training", "probe_summary") and getattr(module, "EXPAND_ALIASES", True):
            data[name] = expand_aliases(data[name], aliases)
    mixing_only = getattr(module, "MIXING_ONLY", False)  # weightings of one meta-loss only
    extra = {"cfg": cfg} if getattr(module, "NEEDS_CONFIG", False) else {}
    module.plot(data, mixing_schemes(cfg) if mixing_only else list(cfg.schemes), args.out, **extra)


def _authors_runs(args) -> None:
    from mgrl.reproduction import read_authors_data

    read_authors_data(args.authors_data).to_csv(args.out, index=False)


def _reproduction(args) -> None:
    import pandas as pd

    from mgrl import reproduction as rep
    from mgrl.io import read_parquet, write_text_atomic

    cfg, analysis = _load(args)
    settings = analysis.reproduction
    training, authors = read_parquet(args.training), rep.load_authors_runs(args.authors)
    schemes = ["a2c", *cfg.schemes]
    margin_runs = pd.concat([read_parquet(path) for path in args.margin_runs], ignore_index=True)
    fractions = {"gamma": settings.gamma_margin_fraction,
                 "return": settings.return_margin_fraction}
    table = rep.reproduction_table(training, authors, settings.updates, fractions, schemes,
                                   margin_training=margin_runs)
    gaps = rep.gap_table(training, authors, settings.updates, schemes)
    if args.figure:
        from mgrl.figures.reproduction import plot

        plot(training, authors, schemes, max(settings.updates), args.figure)
    write_text_atomic(args.out_gaps, gaps.to_csv(index=False))
    write_text_atomic(args.out_csv, table.to_csv(index=False))
    write_text_atomic(args.out_md, rep.reproduction_markdown(table, gaps))


def _reproduction_replicated(args) -> None:
    import pandas as pd

    from mgrl.io import write_text_atomic
    from mgrl.reproduction import replicated_markdown

    write_text_atomic(args.out, replicated_markdown(pd.read_csv(args.primary),
                                                    pd.read_csv(args.replicate)))


def _enable_compilation_cache() -> None:
    """Reuse compiled programs across jobs of the same shapes (seeds, reruns): $MGRL_JAX_CACHE,
    default ``.jax_cache/`` in the working directory; set it empty to disable."""
    cache = os.environ.get("MGRL_JAX_CACHE", ".jax_cache")
    if cache:
        import jax

        jax.config.update("jax_compilation_cache_dir", os.path.abspath(cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no 'no TPU' noise
    if args.command in ("train", "probe"):
        _enable_compilation_cache()
    try:
        if args.command == "columns":
            from mgrl import metrics, probe

            columns = {"training": metrics.COLUMNS, "probe-summary": probe.SUMMARY_COLUMNS,
                       "probe-samples": probe.SAMPLE_COLUMNS}[args.kind]
            print("| column | meaning |\n| --- | --- |")
            for name, text in columns.items():
                print(f"| `{name}` | {text} |")
            return 0
        if args.command in ("schema", "config-docs"):
            from mgrl import schema

            print(schema.schema_yaml() if args.command == "schema" else schema.config_reference(),
                  end="")
            return 0
        if args.command == "published":
            _published(args)
            return 0
        if args.command in ("authors-runs", "reproduction", "reproduction-replicated"):
            {"authors-runs": _authors_runs, "reproduction": _reproduction,
             "reproduction-replicated": _reproduction_replicated}[args.command](args)
            return 0
        if args.command in ("aggregate", "claims", "replication", "figure", "margin-sweep"):
            {"aggregate": _aggregate, "claims": _claims, "replication": _replication,
             "figure": _figure, "margin-sweep": _margin_sweep}[args.command](args)
            return 0
        cfg, _ = _load(args)
        if args.command == "validate":
            print(f"{args.config or 'config'}: valid (hash {cfg.hash()})")
            return 0
        if args.command == "train":
            from mgrl.runs import run_config
            from mgrl.train import run_training

            run_config(cfg, args.horizon, args.scheme, args.seed)  # a bad run -> ConfigError now

            progress = {"auto": None, "bar": True, "lines": False}[args.progress]
            run_training(cfg, args.horizon, args.scheme, args.seed, args.out, progress=progress)
            return 0
        if args.command == "probe":
            from mgrl.probe import run_probe

            run_probe(cfg, args.run, args.seed, args.out)
            return 0
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # known failure kinds: one line naming the run/path, no traceback
        from mgrl.checkpoint import CheckpointError
        from mgrl.io import DataFileError
        from mgrl.train import NonFiniteError

        if isinstance(err, (CheckpointError, NonFiniteError, DataFileError)):
            print(f"error: {err}", file=sys.stderr)
            return 3
        raise
    return 1  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
