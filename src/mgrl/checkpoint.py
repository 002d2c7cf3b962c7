"""Atomic checkpoints of the full training state, and resume.

Layout: ``<dir>/interval_<NNNNNN>/{state.npz, metrics.parquet, manifest.json}``. A checkpoint is
written into a hidden temporary folder and renamed into place, so a killed job leaves either the
previous checkpoint or the new one, never half of one. The two newest are kept, and those of the
intervals listed in ``probe.checkpoints`` (the states that estimator probes measure).

The state is stored as its flattened leaves (``numpy.savez``, no pickle) and restored onto the tree
structure of a template (``jax.eval_shape`` of ``init``); shapes and dtypes are checked leaf by leaf.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

KEEP = 2


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names its path."""


def _name(interval: int) -> str:
    return f"interval_{interval:06d}"


def save(
    directory: Path,
    interval: int,
    state: Any,
    rows: pd.DataFrame,
    identity: dict,
    keep: frozenset[int] = frozenset(),
) -> Path:
    """Write checkpoint ``interval`` atomically; prune older ones except the intervals in ``keep``
    (the states that probes measure)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / _name(interval)
    tmp = directory / f".{_name(interval)}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]
    with open(tmp / "state.npz", "wb") as f:
        np.savez(f, *leaves)
        f.flush()
        os.fsync(f.fileno())
    rows.to_parquet(tmp / "metrics.parquet", index=False)
    manifest = dict(identity, interval=interval, num_leaves=len(leaves))
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(directory)[:-KEEP]:
        if int(old.name.split("_")[1]) not in keep:
            shutil.rmtree(old, ignore_errors=True)
    return final


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete half-written checkpoint folders left by killed jobs (``.interval_*.tmp-<pid>``)."""
    stale = sorted(Path(directory).glob(".interval_*.tmp-*"))
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def list_checkpoints(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).glob("interval_*") if p.is_dir())


def path_of(directory: Path, interval: int) -> Path:
    return Path(directory) / _name(interval)


def load(path: Path, template: Any, identity: dict | None = None) -> tuple[int, Any, pd.DataFrame]:
    """Load one checkpoint folder onto ``template``'s structure; raise CheckpointError on damage."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path}: unreadable manifest.json ({err})") from err
    if identity is not None:
        for key in ("run", "config_hash", "code_hash", "seeds"):
            if manifest.get(key) != identity.get(key):
                raise CheckpointError(
                    f"checkpoint {path} belongs to a different run or config ({key}: "
                    f"{manifest.get(key)!r} != {identity.get(key)!r}); move it away to start afresh"
                )
    leaves_t, treedef = jax.tree.flatten(template)
    try:
        with np.load(path / "state.npz", allow_pickle=False) as data:
            leaves = [data[f"arr_{i}"] for i in range(len(data.files))]
        rows = pd.read_parquet(path / "metrics.parquet")
    except Exception as err:  # numpy, zipfile and pyarrow each raise their own types for damage
        raise CheckpointError(f"checkpoint {path} is corrupted: {err}") from err
    if len(leaves) != len(leaves_t):
        raise CheckpointError(
            f"checkpoint {path} has {len(leaves)} arrays, the state needs {len(leaves_t)}"
        )
    for i, (a, t) in enumerate(zip(leaves, leaves_t)):
        if a.shape != t.shape or a.dtype != t.dtype:
            raise CheckpointError(
                f"checkpoint {path}: array {i} is {a.dtype}{list(a.shape)}, "
                f"expected {t.dtype}{list(t.shape)}"
            )
    return int(manifest["interval"]), jax.tree.unflatten(treedef, leaves), rows


def load_latest(directory: Path, template: Any, identity: dict | None = None):
    """The newest checkpoint under ``directory`` as (interval, state, metrics rows), or None."""
    found = list_checkpoints(directory)
    if not found:
        return None
    return load(found[-1], template, identity)
