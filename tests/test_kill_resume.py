"""Hard kills (SIGKILL, as an out-of-memory killer, a lost node or pre-emption deliver them): the
training CLI and a Snakemake run resume from the last checkpoint and end where an uninterrupted
run ends, and a killed job never leaves a metrics.parquet behind for a downstream rule to accept.

Both tests run real processes on a config whose intervals take a fraction of a second each, so the
kill lands between checkpoints; the slurm-marked tests/test_slurm.py does the same through SLURM
(scancel, requeue).
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

from mgrl import checkpoint as ckpt
from mgrl.config import config_from_dict
from mgrl.metrics import TIMING_COLUMNS
from mgrl.train import checkpoint_dir, make_train
from test_pipeline import ROOT, copy_workflow

# One K=2 uniform run of 24 intervals, a checkpoint after each; 1000 inner updates make an interval
# last a few tenths of a second on one CPU core, so a kill after checkpoint 2 lands mid-run.
KILL = {
    "name": "kill",
    "seeds": [0],
    "horizons": [2],
    "schemes": {"uniform": {"kind": "uniform"}},
    "env": {"num_rows": 5, "num_cols": 5, "time_limit": 8, "num_envs": 4, "rollout_length": 3},
    "network": {"conv_channels": [4], "policy_hidden": [8], "value_hidden": [8]},
    "train": {"num_intervals": 24, "inner_updates_per_interval": 1000, "checkpoint_every": 1},
    "probe": {"num_samples": 4, "reference_horizon": 2, "reference_samples": 4, "checkpoints": [1],
              "bootstrap": 50},
}
HORIZON, SCHEME, SEED = 2, "uniform", 0
ENV = dict(os.environ, MGRL_JAX_CACHE=str(ROOT / ".jax_cache" / "kill"))


def train_command(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "mgrl", "train", "--config", str(config), "--horizon", str(HORIZON),
            "--scheme", SCHEME, "--seed", str(SEED), "--out", str(out), "--progress", "lines"]


def run_checkpoints(out: Path) -> Path:
    """The checkpoint folder of the KILL run under ``out`` (namespaced by its config hash)."""
    cfg = config_from_dict(KILL)
    return checkpoint_dir(out, cfg.for_run(HORIZON, SCHEME, (SEED,)).hash())


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Poll until ``path`` exists; fail if ``proc`` ends first (the kill would come too late)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the process ended (exit {proc.returncode}) before {path} appeared; "
                        "make KILL's intervals longer")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {timeout}s")
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
    victim = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(run_checkpoints(out) / "interval_000002", victim)
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
    assert 2 <= last < KILL["train"]["num_intervals"], f"kill came too late: checkpoints {saved}"

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
    target = f"results/runs/kill/K{HORIZON}/{SCHEME}/seed{SEED}/metrics.parquet"
    # --configfile takes several files: it must not be last, or it swallows the target.
    smk = [sys.executable, "-m", "snakemake", "--configfile", "kill.yaml", "--cores", "1"]
    proc = subprocess.Popen([*smk, target], cwd=workdir, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    run_dir = workdir / Path(target).parent
    try:
        wait_for(run_checkpoints(run_dir) / "interval_000002", proc)
        kill_tree(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert not (workdir / target).exists()
    assert ckpt.list_checkpoints(run_checkpoints(run_dir))
    # The training log was cut off mid-run; Snakemake's view: the job must run again.
    dry = subprocess.run([*smk, "-n", "--nolock", target], cwd=workdir, env=ENV,
                         capture_output=True, text=True)
    assert dry.returncode == 0 and "train" in dry.stdout + dry.stderr, dry.stdout + dry.stderr

    subprocess.run([*smk, "--unlock"], cwd=workdir, env=ENV, capture_output=True, check=True)
    rerun = subprocess.run([*smk, target], cwd=workdir, env=ENV, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (workdir / f"results/logs/kill/train/K{HORIZON}_{SCHEME}_seed{SEED}.log").read_text()
    assert "resuming K2-uniform from checkpoint at interval" in log, log

    reference = uninterrupted.result()
    pd.testing.assert_frame_equal(metric_values(pd.read_parquet(workdir / target)),
                                  metric_values(pd.read_parquet(reference / "metrics.parquet")))
