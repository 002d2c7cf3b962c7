"""The real Snakefile on a real (single-node) SLURM through profiles/slurm-test, with pre-emption.

`pytest -m slurm` runs only this module. It starts SLURM with tests/slurm/cluster.sh (installing
slurm-wlm and munge with apt-get when run as root; skipped when they are missing and cannot be
installed), runs the tiny pipeline of tests/test_pipeline.py through the profile, and while the
training jobs run it
  * requeues one of them (`scontrol requeue`, what SLURM does to a pre-empted --requeue job): the job
    restarts under the same SLURM id, resumes from its last checkpoint and this Snakemake run carries on;
  * cancels another (`scancel`): this run fails; the next run resumes that job and completes.
The daemons are stopped again by the fixture's finalizer.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mgrl.config import config_from_dict
from mgrl.metrics import COLUMNS
from test_pipeline import ROOT, SNAKEMAKE, TINY, assert_final_outputs, copy_workflow

pytestmark = pytest.mark.slurm

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
PROFILE = ROOT / "profiles" / "slurm-test"
RUN_TIMEOUT = 900  # seconds per Snakemake run; `timeout -k` because SIGTERM makes it wait for jobs
# TINY with more intervals of the same compiled program (so the JAX cache of test_pipeline serves it)
# and a pause after each checkpoint: a training job runs for >= 30 x 0.3 s whatever the machine's
# speed, so the test can interrupt it between two checkpoints.
CONFIG = {**TINY, "train": {**TINY["train"], "num_intervals": 30, "pause_after_checkpoint_s": 0.3}}
INTERRUPT_AFTER = 3  # interrupt a job once it has checkpointed this interval (or a later one)


def sh(*cmd: str) -> str | None:
    """stdout of a SLURM client command, or None if it failed (e.g. the job ended meanwhile)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return proc.stdout if proc.returncode == 0 else None


@pytest.fixture(scope="module")
def cluster(request):
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')")

    def stop():
        proc = subprocess.run(["bash", str(CLUSTER), "stop"], capture_output=True, text=True)
        print(proc.stderr)

    try:
        proc = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True,
                              timeout=900)
    except subprocess.TimeoutExpired:
        stop()
        raise
    if proc.returncode == 4:  # not installed and not installable, or not root: nothing started
        pytest.skip((proc.stderr.strip().splitlines() or ["no SLURM here"])[-1])
    # Stop what this start started (also after a start that failed half-way); a cluster that was
    # already up before the test (started by hand with cluster.sh) is left running.
    if "[mgrl-slurm] started " in proc.stderr:
        request.addfinalizer(stop)
    assert proc.returncode == 0, f"cluster.sh start failed:\n{proc.stdout}\n{proc.stderr}"


def training_jobs() -> dict[str, tuple[str, Path]]:
    """SLURM id -> (state, run folder) of this cluster's training jobs, from the plugin's comment
    `rule_train_wildcards_<horizon>_<scheme>_<group>`."""
    jobs = {}
    for line in (sh("squeue", "-h", "--states=all", "-o", "%i|%T|%k") or "").splitlines():
        job_id, state, comment = line.split("|", 2)
        if comment.startswith("rule_train_wildcards_"):
            horizon, rest = comment.removeprefix("rule_train_wildcards_").split("_", 1)
            scheme, group = rest.rsplit("_", 1)
            jobs[job_id] = (state, Path(f"results/runs/tiny/K{horizon}/{scheme}/{group}"))
    return jobs


def latest_checkpoint(run_dir: Path) -> int:
    """The newest checkpointed interval under ``run_dir`` (0 if none). Older ones are pruned, so
    test for "at least interval n", never for one interval's folder."""
    return max((int(p.name.split("_")[1]) for p in run_dir.glob("checkpoints/*/interval_*")
                if p.is_dir()), default=0)


def interrupt_two_training_jobs(workdir: Path, run: subprocess.Popen, log: Path):
    """Requeue the first running training job that has checkpointed and not finished, cancel the
    second; let the requeued job start again at once (SLURM holds requeued jobs for ~2 minutes).
    Returns (SLURM id, run folder) of the requeued and of the cancelled job."""
    requeued = cancelled = None
    released = False
    deadline = time.monotonic() + RUN_TIMEOUT
    while not (cancelled and released):
        if run.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"could not interrupt two training jobs mid-run (requeued {requeued}, "
                        f"cancelled {cancelled}; Snakemake exit {run.poll()}); raise CONFIG's "
                        f"num_intervals or pause. Snakemake's log ends:\n{log.read_text()[-5000:]}")
        for job_id, (state, run_dir) in training_jobs().items():
            if requeued and job_id == requeued[0]:
                if state == "PENDING" and not released:
                    released = sh("scontrol", "update", f"JobId={job_id}", "StartTime=now") is not None
                continue
            mid_run = (state == "RUNNING"
                       and latest_checkpoint(workdir / run_dir) >= INTERRUPT_AFTER
                       and not (workdir / run_dir / "metrics.parquet").exists())
            if mid_run and requeued is None and sh("scontrol", "requeue", job_id) is not None:
                requeued = (job_id, run_dir)
            elif mid_run and cancelled is None and sh("scancel", job_id) is not None:
                cancelled = (job_id, run_dir)
        time.sleep(0.1)
    return requeued, cancelled


def train_log(workdir: Path, run_dir: Path) -> str:
    k, scheme, group = run_dir.parts[-3:]
    return (workdir / f"results/logs/tiny/train/{k}_{scheme}_{group}.log").read_text()


def test_tiny_pipeline_on_slurm_resumes_after_requeue_and_scancel(cluster, tmp_path):
    workdir = copy_workflow(tmp_path / "workflow")
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(CONFIG))
    # The copy keeps the shipped config.yaml: cluster jobs must use tiny.yaml alone (the Snakefile
    # reads config.yaml only when no --configfile is given; the config_hash check below tests it).
    cmd = ["timeout", "-k", "10", str(RUN_TIMEOUT), *SNAKEMAKE, "--profile", str(PROFILE),
           "--configfile", "tiny.yaml"]
    env = dict(os.environ, MGRL_JAX_CACHE=str(ROOT / ".jax_cache" / "pipeline"))
    start = time.perf_counter()

    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            (requeued_id, requeued), (cancelled_id, cancelled) = interrupt_two_training_jobs(
                workdir, first, tmp_path / "first.log")
            first.wait(timeout=RUN_TIMEOUT + 30)
        finally:
            if first.poll() is None:
                first.kill()
    first_log = (tmp_path / "first.log").read_text()
    print(f"first run (interrupted): {time.perf_counter() - start:.0f}s")
    assert first.returncode not in (0, 124, 137), first_log[-5000:]
    assert f"SLURM-job '{cancelled_id}' failed, SLURM status is: 'CANCELLED'" in first_log, \
        first_log[-5000:]
    # The requeued job ran again under its SLURM id, resumed, and finished within the first run.
    assert (workdir / requeued / "metrics.parquet").exists(), first_log[-5000:]
    assert "from checkpoint at interval" in train_log(workdir, requeued)
    # The cancelled one left checkpoints and no metrics.parquet.
    assert not (workdir / cancelled / "metrics.parquet").exists()
    assert list((workdir / cancelled).glob("checkpoints/*/interval_*"))

    second = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    print(f"both runs: {time.perf_counter() - start:.0f}s")
    assert second.returncode == 0, (second.stdout + second.stderr)[-5000:]
    resumed = [line for line in train_log(workdir, cancelled).splitlines() if "resuming" in line]
    assert resumed and "from checkpoint at interval" in resumed[0], train_log(workdir, cancelled)

    results = workdir / "results"
    assert_final_outputs(results)
    cfg = config_from_dict(CONFIG)
    runs = sorted((results / "runs" / "tiny").glob("K*/*/seed*/metrics.parquet"))
    assert len(runs) == 2 * 4  # seeds x (a2c, K1, K2 last, K2 uniform)
    for path in runs:
        frame = pd.read_parquet(path)
        assert list(frame.columns) == list(COLUMNS)
        assert frame["interval"].tolist() == list(range(1, CONFIG["train"]["num_intervals"] + 1))
        # every cluster job trained exactly the configured run (no config drift inside jobs)
        horizon, scheme, seed = int(frame.horizon[0]), frame.scheme[0], int(frame.seed[0])
        assert (frame["config_hash"] == cfg.for_run(horizon, scheme, (seed,)).hash()).all(), path
    training = pd.read_parquet(results / "metrics" / "training.parquet")
    assert list(training.columns) == list(COLUMNS)
    assert len(training) == 8 * CONFIG["train"]["num_intervals"]
    from mgrl.probe import SUMMARY_COLUMNS

    summary = pd.read_parquet(results / "metrics" / "probe_summary.parquet")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert (summary["variance_trace"] > 0).all()
