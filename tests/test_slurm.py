"""The real Snakefile on a real (single-node) SLURM through profiles/slurm-test, with pre-emption.

`pytest -m slurm` runs only this module. It starts SLURM with tests/slurm/cluster.sh (installing
slurm-wlm and munge with apt-get when run as root; skipped when they are missing and cannot be
installed), runs two training jobs of the tiny pipeline of tests/test_pipeline.py through the
profile (the rest of that DAG, probes and analysis, runs through the same executor code and is
checked by tests/test_pipeline.py; here it would only double the suite's cost), and
  * requeues one training job (`scontrol requeue`, what SLURM does to a pre-empted --requeue job):
    the job restarts under the same SLURM id, resumes from its last checkpoint and this Snakemake
    run carries on;
  * cancels another (`scancel`): this run fails; the next run resumes that job and completes.
Both interruptions land mid-run at a point the test controls, whatever the machine's speed: every
training job of the first run holds after its checkpoint of interval HOLD_AT (the test-only hook
$MGRL_TEST_HOLD of tests/hooks/sitecustomize.py) until the test has interrupted two of them and
releases the rest.

The scenario mostly waits on the scheduler and on the executor's status polling, so it runs as a
background process (`python tests/test_slurm.py <folder>`) started as soon as pytest has collected
the test (tests/conftest.py; under pytest-xdist by the controller), beside the rest of the suite;
the test itself comes last and checks what the scenario recorded in <folder>/result.json. The
scenario stops the daemons it started when it ends.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import held_job_env
from mgrl.config import config_from_dict
from mgrl.metrics import COLUMNS
from mgrl.runs import run_config
from test_pipeline import ROOT, SNAKEMAKE, TINY, copy_workflow

pytestmark = pytest.mark.slurm

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
PROFILE = ROOT / "profiles" / "slurm-test"
RUN_TIMEOUT = 900  # seconds per Snakemake run; `timeout -k` because SIGTERM makes it wait for jobs
# TINY itself (so the JAX cache of test_pipeline serves it): 3 intervals, a checkpoint after each.
CONFIG = TINY
HOLD_AT = 2  # every first-run training job holds after checkpointing this interval
# The scenario's targets: two training runs of TINY (a2c and a meta-gradient agent), one job each
# (both seeds vmapped); the first is requeued and the second cancelled while both hold.
TARGET_RUNS = ("K1/a2c/seed0-1", "K2/last/seed0-1")
TARGETS = [f"results/{CONFIG['name']}/runs/{run}/metrics.parquet" for run in TARGET_RUNS]


def sh(*cmd: str) -> str | None:
    """stdout of a SLURM client command, or None if it failed (e.g. the job ended meanwhile)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return proc.stdout if proc.returncode == 0 else None


def training_jobs() -> dict[str, tuple[str, Path, str]]:
    """SLURM id -> (state, run folder, hold marker name) of this cluster's training jobs, from the
    plugin's comment `rule_train_wildcards_<horizon>_<scheme>_<group>`."""
    jobs = {}
    for line in (sh("squeue", "-h", "--states=all", "-o", "%i|%T|%k") or "").splitlines():
        job_id, state, comment = line.split("|", 2)
        if comment.startswith("rule_train_wildcards_"):
            horizon, rest = comment.removeprefix("rule_train_wildcards_").split("_", 1)
            scheme, group = rest.rsplit("_", 1)
            run_dir = Path("results", CONFIG["name"], "runs", f"K{horizon}", scheme, group)
            jobs[job_id] = (state, run_dir, f"K{horizon}-{scheme}-{group}.held")
    return jobs


def interrupt_two_held_training_jobs(hold: Path, run: subprocess.Popen, log: Path):
    """Requeue the first training job that holds after its checkpoint of interval HOLD_AT and
    cancel the second; once SLURM has stopped both (scancel and requeue signal the job and return
    at once: a job released before it is stopped would checkpoint its next interval first), release
    every job (the marker `release`) and let the requeued job start again at once (SLURM holds
    requeued jobs back for ~2 minutes). Jobs wait for the release, so nothing here races the
    machine. Returns (SLURM id, run folder) of the requeued and the cancelled job."""
    requeued = cancelled = None
    released = False
    deadline = time.monotonic() + RUN_TIMEOUT
    while not released:
        if run.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                f"could not interrupt two held training jobs (requeued {requeued}, cancelled "
                f"{cancelled}; Snakemake exit {run.poll()}). Snakemake's log ends:\n"
                f"{log.read_text()[-5000:]}")
        jobs = training_jobs()
        if requeued and cancelled:
            stopped = jobs.get(cancelled[0], ("GONE",))[0] not in ("RUNNING", "COMPLETING")
            if stopped and jobs.get(requeued[0], ("",))[0] == "PENDING":
                (hold / "release").touch()  # both stopped: every other job may go on
                released = sh("scontrol", "update", f"JobId={requeued[0]}",
                              "StartTime=now") is not None
        for job_id, (state, run_dir, marker) in jobs.items():
            held = state == "RUNNING" and (hold / marker).exists()
            if not held or job_id in {job[0] for job in (requeued, cancelled) if job}:
                continue
            if requeued is None and sh("scontrol", "requeue", job_id) is not None:
                requeued = (job_id, run_dir)
            elif requeued and cancelled is None and sh("scancel", job_id) is not None:
                cancelled = (job_id, run_dir)
        time.sleep(0.2)
    return requeued, cancelled


SCENARIO_TIMEOUT = 2 * RUN_TIMEOUT + 960  # cluster start (may apt-get install) + two runs


def scenario_dir(config) -> Path:
    """Where the scenario of this pytest session records its result: beside the session's base
    temporary folder (the controller's under pytest-xdist, whose workers get sub-folders of it)."""
    base = config._tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / "slurm-scenario"


def start_scenario(config) -> subprocess.Popen | None:
    """Start the scenario as a background process (`python tests/test_slurm.py <folder>`) unless
    this pytest run has started it already. Returns the process, or None if it was running."""
    folder = scenario_dir(config)
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        return None
    log = open(folder / "scenario.log", "w")
    return subprocess.Popen([sys.executable, __file__, str(folder)], stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT)


def run_scenario(folder: Path) -> dict:
    """Start SLURM, run the tiny pipeline through the profile with one requeue and one scancel
    while the jobs hold, rerun it, stop the daemons it started; what happened goes to
    ``folder/result.json`` for the test (written last, atomically)."""
    result: dict = {"seconds": {}}
    start = time.perf_counter()
    started_cluster = False
    try:
        if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
            result["skip"] = ("snakemake-executor-plugin-slurm is not installed "
                              "(pip install -e '.[test]')")
            return result
        proc = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True,
                              timeout=900)
        # Stop what this start started (also after a start that failed half-way); a cluster that
        # was already up before the test (started by hand with cluster.sh) is left running.
        started_cluster = "[mgrl-slurm] started " in proc.stderr
        if proc.returncode == 4:  # not installed and not installable, or not root: nothing started
            result["skip"] = (proc.stderr.strip().splitlines() or ["no SLURM here"])[-1]
            return result
        assert proc.returncode == 0, f"cluster.sh start failed:\n{proc.stdout}\n{proc.stderr}"
        result["seconds"]["cluster_start"] = time.perf_counter() - start

        workdir = copy_workflow(folder / "workflow")
        result["workdir"] = str(workdir)
        (workdir / "tiny.yaml").write_text(yaml.safe_dump(CONFIG))
        hold = folder / "hold"
        hold.mkdir()
        # The copy keeps the shipped config.yaml: cluster jobs must use tiny.yaml alone (the
        # Snakefile reads config.yaml only when no --configfile is given; the test checks the hash).
        cmd = ["timeout", "-k", "10", str(RUN_TIMEOUT), *SNAKEMAKE, *TARGETS, "--profile",
               str(PROFILE), "--configfile", "tiny.yaml"]
        # sbatch --export=ALL: the jobs see the hold hook and the suite's compilation cache.
        env = held_job_env(dict(os.environ), HOLD_AT, hold)
        for name in ("first", "second"):
            log_path = folder / f"{name}.log"
            with open(log_path, "w") as log:
                run = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
                try:
                    if name == "first":
                        requeued, cancelled = interrupt_two_held_training_jobs(hold, run, log_path)
                        result["requeued"] = [requeued[0], str(requeued[1])]
                        result["cancelled"] = [cancelled[0], str(cancelled[1])]
                    run.wait(timeout=RUN_TIMEOUT + 30)
                finally:
                    if run.poll() is None:
                        run.kill()
                    (hold / "release").touch()
            result[f"{name}_returncode"] = run.returncode
            result[f"{name}_log"] = str(log_path)
            result["seconds"][f"{name}_run_done"] = time.perf_counter() - start
    except BaseException as err:  # reported by the test
        import traceback

        result["error"] = "".join(traceback.format_exception(err))
    finally:
        if started_cluster:
            proc = subprocess.run(["bash", str(CLUSTER), "stop"], capture_output=True, text=True)
            result["cluster_stop"] = proc.stderr[-2000:]
        tmp = folder / "result.json.tmp"
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, folder / "result.json")
    return result


def train_log(workdir: Path, run_dir: Path) -> str:
    k, scheme, group = run_dir.parts[-3:]
    return (workdir / "results" / CONFIG["name"] / "logs" / "train" / f"{k}_{scheme}_{group}.log").read_text()


def test_training_jobs_on_slurm_resume_after_requeue_and_scancel(request):
    folder = scenario_dir(request.config)
    start_scenario(request.config)  # no-op when tests/conftest.py started it at collection
    deadline = time.monotonic() + SCENARIO_TIMEOUT
    while not (folder / "result.json").exists():
        assert time.monotonic() < deadline, (folder / "scenario.log").read_text()[-5000:]
        time.sleep(1)
    sc = json.loads((folder / "result.json").read_text())
    if sc.get("skip"):
        pytest.skip(sc["skip"])
    assert "error" not in sc, sc["error"] + (folder / "scenario.log").read_text()[-3000:]
    print(f"SLURM scenario seconds: {sc['seconds']}")
    workdir = Path(sc["workdir"])
    (_, requeued), (cancelled_id, cancelled) = sc["requeued"], sc["cancelled"]
    requeued, cancelled = Path(requeued), Path(cancelled)
    first_log = Path(sc["first_log"]).read_text()
    assert sc["first_returncode"] not in (0, 124, 137), first_log[-5000:]
    assert f"SLURM-job '{cancelled_id}' failed, SLURM status is: 'CANCELLED'" in first_log, \
        first_log[-5000:]
    # The requeued job ran again under its SLURM id, resumed, and finished within the first run.
    assert (workdir / requeued / "metrics.parquet").exists(), first_log[-5000:]
    assert f"from checkpoint at interval {HOLD_AT} " in train_log(workdir, requeued)

    assert sc["second_returncode"] == 0, Path(sc["second_log"]).read_text()[-5000:]
    # The cancelled job had left its checkpoints (and no metrics.parquet): the rerun resumed it.
    resumed = [line for line in train_log(workdir, cancelled).splitlines() if "resuming" in line]
    assert resumed and f"from checkpoint at interval {HOLD_AT} " in resumed[0], \
        train_log(workdir, cancelled)

    results = workdir / "results" / CONFIG["name"]
    cfg = config_from_dict(CONFIG)
    runs = sorted((results / "runs").glob("K*/*/seed*/metrics.parquet"))
    assert runs == sorted(workdir / target for target in TARGETS)  # what was asked, nothing more
    assert {requeued, cancelled} == {Path("results", CONFIG["name"], "runs", run)
                                     for run in TARGET_RUNS}
    for path in runs:
        frame = pd.read_parquet(path)
        assert list(frame.columns) == list(COLUMNS)
        for _, rows in frame.groupby("seed"):
            assert rows["interval"].tolist() == list(range(1, CONFIG["train"]["num_intervals"] + 1))
        # every cluster job trained exactly the configured run (no config drift inside jobs)
        horizon, scheme = int(frame.horizon[0]), frame.scheme[0]
        seeds = tuple(sorted(int(s) for s in set(frame.seed)))
        assert seeds == tuple(CONFIG["seeds"]), path
        assert (frame["config_hash"] == run_config(cfg, horizon, scheme, seeds).hash()).all(), path

if __name__ == "__main__":  # the background scenario (see start_scenario)
    import signal

    def _interrupted(signum, frame):  # SIGTERM from an ending session: clean up in `finally`
        raise SystemExit(f"interrupted by signal {signum}")

    signal.signal(signal.SIGTERM, _interrupted)
    sys.exit(0 if "error" not in run_scenario(Path(sys.argv[1])) else 1)
