"""Command line: ``python -m mgrl train|probe|validate|columns``.

Examples::

    python -m mgrl train --config config.yaml --horizon 4 --scheme uniform --seed 0 --out results/runs/x
    python -m mgrl validate --config config.yaml
    python -m mgrl columns          # the metric columns as a Markdown table
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mgrl.config import BASELINE_SCHEME, ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mgrl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one (horizon, scheme) for one or more seeds")
    train.add_argument("--config", required=True, help="experiment YAML (see config.yaml)")
    train.add_argument("--horizon", type=int, required=True, help="K, inner steps per meta-update")
    train.add_argument("--scheme", required=True,
                       help=f"a scheme name from the config's `schemes`, or '{BASELINE_SCHEME}'")
    train.add_argument("--seed", type=int, action="append", required=True,
                       help="training seed; repeat to train several seeds vmapped in one job")
    train.add_argument("--out", required=True, help="output folder (metrics.parquet, checkpoints/)")
    train.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                       help="progress bar on a terminal (auto), always (bar), or log lines")

    probe = sub.add_parser("probe", help="meta-gradient estimator statistics on saved states")
    probe.add_argument("--config", required=True)
    probe.add_argument("--run", required=True, help="training output folder with checkpoints/")
    probe.add_argument("--seed", type=int, required=True)
    probe.add_argument("--out", required=True, help="output folder (samples/summary Parquet)")

    validate = sub.add_parser("validate", help="check a config and exit")
    validate.add_argument("--config", required=True)

    sub.add_parser("columns", help="print the documented metric columns as Markdown")
    return parser


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
            from mgrl.metrics import COLUMNS

            print("| column | meaning |\n| --- | --- |")
            for name, text in COLUMNS.items():
                print(f"| `{name}` | {text} |")
            return 0
        cfg = load_config(args.config)
        if args.command == "validate":
            print(f"{args.config}: valid (hash {cfg.hash()})")
            return 0
        if args.command == "train":
            cfg.scheme(args.scheme)  # unknown scheme -> ConfigError before any work
            if args.scheme == BASELINE_SCHEME and args.horizon != 1:
                raise ConfigError("horizon", f"the '{BASELINE_SCHEME}' baseline needs --horizon 1")
            if args.horizon < 1:
                raise ConfigError("horizon", f"K must be >= 1, got {args.horizon}")
            from mgrl.train import run_training

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
    return 1  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
