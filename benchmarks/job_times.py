"""Per-rule job times of a pipeline run, from the Snakemake ``benchmark:`` files of its jobs.

    python benchmarks/job_times.py [--experiment default] [--root results]

Reads every ``<root>/<experiment>/benchmarks/<rule>/*.tsv`` (``train/K<K>_<scheme>_<group>.tsv``,
``probe/seed<S>.tsv``): Snakemake's benchmark format, a header line
``s  h:m:s  max_rss  max_vms  max_uss  max_pss  io_in  io_out  mean_load  cpu_time`` and one row
per repeat (a job's wall and CPU time are the means over its repeats, its RSS the largest;
``max_rss`` in MB, times in seconds).
Prints, per rule: jobs, total / mean / max wall seconds, max RSS in MB and total CPU seconds; then
the sum of wall seconds over all jobs.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple


class Job(NamedTuple):
    wall_s: float
    max_rss_mb: float | None
    cpu_s: float | None


def _number(text: str | None) -> float | None:
    try:
        return float(text)  # Snakemake writes "-" or "NA" where it could not measure
    except (TypeError, ValueError):
        return None


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def read_job(path: Path) -> Job:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: no benchmark row")
    wall = _mean([_number(r.get("s")) for r in rows])
    if wall is None:
        raise ValueError(f"{path}: no wall time (column s)")
    rss = [v for v in (_number(r.get("max_rss")) for r in rows) if v is not None]
    return Job(wall, max(rss) if rss else None, _mean([_number(r.get("cpu_time")) for r in rows]))


def jobs_by_rule(directory: Path) -> dict[str, list[Job]]:
    rules: dict[str, list[Job]] = defaultdict(list)
    for path in sorted(directory.glob("*/**/*.tsv")):
        rules[path.relative_to(directory).parts[0]].append(read_job(path))
    return dict(rules)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="default", help="experiment name (default: default)")
    parser.add_argument("--root", default="results", type=Path,
                        help="folder of the experiments' outputs (default: results)")
    args = parser.parse_args(argv)
    directory = args.root / args.experiment / "benchmarks"
    rules = jobs_by_rule(directory)
    if not rules:
        parser.error(f"no benchmark files under {directory}/<rule>/")
    print(f"{'rule':12s} {'jobs':>5s} {'total_s':>9s} {'mean_s':>8s} {'max_s':>8s} "
          f"{'max_rss_mb':>10s} {'cpu_s':>9s}")
    for rule, jobs in sorted(rules.items()):
        walls = [j.wall_s for j in jobs]
        rss = [j.max_rss_mb for j in jobs if j.max_rss_mb is not None]
        cpu = [j.cpu_s for j in jobs if j.cpu_s is not None]
        print(f"{rule:12s} {len(jobs):5d} {sum(walls):9.1f} {statistics.fmean(walls):8.1f} "
              f"{max(walls):8.1f} {_fmt(max(rss) if rss else None):>10s} "
              f"{_fmt(sum(cpu) if cpu else None):>9s}")
    print(f"sum of wall seconds: {sum(j.wall_s for jobs in rules.values() for j in jobs):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
