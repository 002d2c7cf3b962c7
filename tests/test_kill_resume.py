"""Hard kills (SIGKILL, as an out-of-memory killer, a lost node or pre-emption deliver them): the
training CLI and a Snakemake run resume from the last checkpoint and end where an uninterrupted
run ends, and a killed job never leaves a metrics.parquet behind for a downstream rule to accept.

Both tests run real processes. The kill lands mid-run at a point the test controls, whatever the
machine's speed: the job holds after its checkpoint of interval HOLD_AT (the test-only hook
$MGRL_TEST_HOLD of tests/hooks/sitecustomize.py) and the test kills it while it waits. The slurm-marked
tests/test_slurm.py does the same through SLURM (scancel, requeue).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import held_job_env
from forked_snakemake import run_snakemake
from mgrl import checkpoint as ckpt
from mgrl.config import config_from_dict
from mgrl.metrics import TIMING_COLUMNS
from mgrl.train import checkpoint_dir, make_train
from mgrl.runs import run_config
from test_pipeline import SNAKEMAKE, TINY, copy_workflow

# The K=2 uniform run of tests/test_pipeline.py's TINY config (the same compiled program, so the
# shared compilation cache serves it): 4 intervals, a checkpoint after each; killed while it holds
# after checkpoint HOLD_AT.
KILL = {**TINY, "name": "kill", "seeds": [0], "horizons": [2],
        "schemes": {"uniform": {"kind": "uniform"}},
        "train": {**TINY["train"], "num_intervals": 4}}
HORIZON, SCHEME, SEED = 2, "uniform", 0
HOLD_AT = 2
ENV = dict(os.environ)  # $MGRL_JAX_CACHE: the suite's shared cache (conftest)


def train_command(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "mgrl", "train", "--config", str(config), "--horizon", str(HORIZON),
            "--scheme", SCHEME, "--seed", str(SEED), "--out", str(out), "--progress", "lines"]


def run_checkpoints(out: Path) -> Path:
    """The checkpoint folder of the KILL run under ``out`` (namespaced by its config hash)."""
    cfg = config_from_dict(KILL)
    return checkpoint_dir(out, run_config(cfg, HORIZON, SCHEME, (SEED,)).hash())


def held_env(hold: Path) -> dict[str, str]:
    """The environment of a job that holds after its checkpoint of HOLD_AT until ``hold/release``."""
    return held_job_env(ENV, HOLD_AT, hold)


def wait_until_held(hold: Path, proc: subprocess.Popen, log: Path | None = None,
                    timeout: float = 600) -> None:
    """Wait until the job holds (its marker in ``hold``); fail if ``proc`` ends first. The job
    waits for the test, so the timeout only guards against a job that never gets there."""
    marker = hold / f"K{HORIZON}-{SCHEME}-seed{SEED}.held"
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"the process ended (exit {proc.returncode}) before it held at interval "
                        f"{HOLD_AT}" + (f"; its log ends:\n{log.read_text()[-3000:]}" if log else ""))
        if time.monotonic() > deadline:
            pytest.fail(f"{marker} did not appear within {timeout}s")
        time.sleep(0.02)


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it (children first collected, then all killed)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def metric_values(frame: pd.DataFrame) -> pd.DataFrame:
    """All columns but wall times and git_sha (a workflow copy outside git records 'unknown')."""
    return frame.drop(columns=[*TIMING_COLUMNS, "git_sha"]).reset_index(drop=True)


def final_state(out: Path):
    template = jax.eval_shape(make_train(config_from_dict(KILL), HORIZON, SCHEME).init,
                              jnp.asarray([SEED]))
    interval, state, _ = ckpt.load_latest(run_checkpoints(out), template)
    assert interval == KILL["train"]["num_intervals"]
    return state


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kill") / "kill.yaml"
    path.write_text(yaml.safe_dump(KILL))
    return path


@pytest.fixture(scope="module")
def uninterrupted(config_file):
    """The reference: the same run, never interrupted. Started at first use, awaited by .result()."""
    out = config_file.parent / "uninterrupted"
    proc = subprocess.Popen(train_command(config_file, out), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

    class Reference:
        @staticmethod
        def result() -> Path:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err[-3000:]
            return out

    yield Reference
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_sigkilled_training_resumes_and_ends_identical_to_an_uninterrupted_run(
        config_file, uninterrupted, tmp_path):
    out = tmp_path / "killed"
    cmd = train_command(config_file, out)
    victim = subprocess.Popen(cmd, env=held_env(tmp_path / "hold"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until_held(tmp_path / "hold", victim)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait()
    assert victim.returncode == -signal.SIGKILL
    # Killed mid-run: complete checkpoints only, and no metrics.parquet for a downstream rule.
    assert not (out / "metrics.parquet").exists()
    assert not list(out.glob("*.parquet")), "a partial Parquet file is visible"
    saved = [int(p.name.split("_")[1]) for p in ckpt.list_checkpoints(run_checkpoints(out))]
    last = max(saved)
    assert last == HOLD_AT < KILL["train"]["num_intervals"], f"checkpoints {saved}"

    rerun = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming K2-uniform from checkpoint at interval {last} " in rerun.stderr, rerun.stderr
    total = KILL["train"]["num_intervals"]
    assert f"interval {last + 1}/{total} " in rerun.stderr and f"interval 1/{total} " not in rerun.stderr

    reference = uninterrupted.result()
    pd.testing.assert_frame_equal(metric_values(pd.read_parquet(out / "metrics.parquet")),
                                  metric_values(pd.read_parquet(reference / "metrics.parquet")))
    for a, b in zip(jax.tree.leaves(final_state(out)), jax.tree.leaves(final_state(reference)),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_sigkilled_snakemake_run_leaves_nothing_downstream_accepts_and_resumes(
        config_file, uninterrupted, tmp_path):
    """Kill Snakemake and its training job mid-run: the output is absent (a dry run schedules the
    job again), `--unlock` clears the stale lock, and the rerun resumes and matches the reference."""
    workdir = copy_workflow(tmp_path / "workflow")
    (workdir / "kill.yaml").write_text(config_file.read_text())
    target = f"results/kill/runs/K{HORIZON}/{SCHEME}/seed{SEED}/metrics.parquet"
    # --configfile takes several files: it must not be last, or it swallows the target.
    args = ["--configfile", "kill.yaml", "--cores", "1"]
    smk = [*SNAKEMAKE, *args]
    log = tmp_path / "snakemake.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*smk, target], cwd=workdir, env=held_env(tmp_path / "hold"),
                                stdout=out, stderr=subprocess.STDOUT)
    run_dir = workdir / Path(target).parent
    try:
        wait_until_held(tmp_path / "hold", proc, log)
        kill_tree(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert not (workdir / target).exists()
    assert ckpt.list_checkpoints(run_checkpoints(run_dir))
    # The training log was cut off mid-run; Snakemake's view: the job must run again.
    # The runs below are not interrupted: forked from the suite's Snakemake zygote (same
    # environment, ENV), as `python -m snakemake` would run them.
    dry = run_snakemake([*args, "-n", "--nolock", target], cwd=workdir)
    assert dry.returncode == 0 and "train" in dry.stdout + dry.stderr, dry.stdout + dry.stderr

    unlock = run_snakemake([*args, "--unlock"], cwd=workdir)
    assert unlock.returncode == 0, unlock.stdout[-3000:]
    rerun = run_snakemake([*args, target], cwd=workdir)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    log = (workdir / f"results/kill/logs/train/K{HORIZON}_{SCHEME}_seed{SEED}.log").read_text()
    assert "resuming K2-uniform from checkpoint at interval" in log, log

    reference = uninterrupted.result()
    pd.testing.assert_frame_equal(metric_values(pd.read_parquet(workdir / target)),
                                  metric_values(pd.read_parquet(reference / "metrics.parquet")))
