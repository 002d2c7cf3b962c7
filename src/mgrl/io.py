"""File IO of every stage: atomic writes (Parquet, text) and Parquet reads that name a bad file.

Writes go to a temporary file in the target's folder and are renamed into place, so a reader (or a
killed job) never sees half a file; Snakemake then only ever sees complete outputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd


class DataFileError(RuntimeError):
    """A Parquet input that is missing or damaged; the message names its path."""


def _temporary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_parquet_atomic(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` to ``path`` via a temporary file and rename: readers never see half a file."""
    path = Path(path)
    tmp = _temporary(path)
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` via a temporary file and rename, so readers never see half a table."""
    path = Path(path)
    tmp = _temporary(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def read_parquet(path: str | Path) -> pd.DataFrame:
    """One Parquet file; a missing or damaged file raises :class:`DataFileError` naming it."""
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for damaged files
        raise DataFileError(f"cannot read Parquet file {path}: {type(err).__name__}: {err}") from err


def read_parquets(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate Parquet files; a damaged file is reported by path; no files is an error."""
    frames = [read_parquet(p) for p in paths]
    if not frames:
        raise ValueError("no Parquet files to aggregate")
    return pd.concat(frames, ignore_index=True)
