"""Test-only hooks for the jobs that tests start as processes (``python -m mgrl train``, alone,
under Snakemake or as SLURM jobs). Python imports this file at start-up when tests/hooks is on
``PYTHONPATH`` (conftest.held_job_env puts it there); it does nothing unless asked.

``$MGRL_TEST_HOLD = "<n>:<folder>"``: a job that has just saved its checkpoint of interval ``n``
writes ``<folder>/<run>-seed<seeds>.held`` and waits until ``<folder>/release`` exists. A test
kills, requeues or cancels the job while it waits, so the interruption lands mid-run however fast
or slow the machine is. A resumed job starts after interval ``n`` and never waits again.
"""

import importlib.abc
import importlib.util
import os
import sys
import time
from pathlib import Path

HOLD_ENV = "MGRL_TEST_HOLD"


def _hold_after_saving(save):
    def save_then_hold(ckpt_dir, interval, state, frame, identity, *args, **kwargs):
        path = save(ckpt_dir, interval, state, frame, identity, *args, **kwargs)
        at, folder = os.environ[HOLD_ENV].split(":", 1)
        folder = Path(folder)
        if interval == int(at) and not (folder / "release").exists():
            folder.mkdir(parents=True, exist_ok=True)
            seeds = "-".join(str(s) for s in identity["seeds"])
            (folder / f"{identity['run']}-seed{seeds}.held").write_text(f"{os.getpid()}\n")
            print(f"{identity['run']}: holding after checkpoint {interval} until "
                  f"{folder / 'release'} exists", file=sys.stderr, flush=True)
            while not (folder / "release").exists():
                time.sleep(0.05)
        return path

    return save_then_hold


class _WrapCheckpointSave(importlib.abc.MetaPathFinder):
    """Wraps ``mgrl.checkpoint.save`` once that module is imported (mgrl.train calls it as
    ``ckpt.save``, so the wrapper is what it calls)."""

    def find_spec(self, name, path, target=None):
        if name != "mgrl.checkpoint":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_then_wrap(module):
            exec_module(module)
            module.save = _hold_after_saving(module.save)

        spec.loader.exec_module = exec_then_wrap
        return spec


if os.environ.get(HOLD_ENV):
    sys.meta_path.insert(0, _WrapCheckpointSave())


def _run_the_next_sitecustomize() -> None:
    """Python imports one ``sitecustomize``: run the one this file hides (a later entry of
    ``sys.path``, such as a distribution's or coverage's), if there is one."""
    here = Path(__file__).resolve().parent
    for entry in sys.path:
        candidate = Path(entry or ".").resolve() / "sitecustomize.py"
        if candidate.is_file() and candidate.parent != here:
            spec = importlib.util.spec_from_file_location("_hidden_sitecustomize", candidate)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


_run_the_next_sitecustomize()
