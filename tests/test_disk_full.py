"""A full disk while writing a checkpoint, a shard array or a table is one line naming the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pcreg.errors import UserError
from pcreg.methods.training import atomic_save
from pcreg.streaming import NpyRowWriter

pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")


def _full(tmp: Path) -> None:
    """Make ``tmp`` (the writer's temporary file) a link to /dev/full: every write fails with ENOSPC."""
    os.symlink("/dev/full", tmp)


def test_checkpoint_on_a_full_disk(tmp_path):
    path = tmp_path / "last.pt"
    _full(tmp_path / "last.pt.tmp")
    with pytest.raises(UserError) as info:
        atomic_save({"model": {"w": torch.zeros(10_000)}}, path)
    assert str(info.value).startswith(f"disk full while writing {path}")
    assert "\n" not in str(info.value)
    assert not path.exists() and not (tmp_path / "last.pt.tmp").exists()  # the partial file is gone


def test_shard_array_on_a_full_disk(tmp_path):
    path = tmp_path / "registered.npy"
    _full(tmp_path / "registered.npy.partial")
    with pytest.raises(UserError, match=f"disk full while writing {path}"):
        with NpyRowWriter(path, (4, 64, 64)) as writer:
            for _ in range(4):
                writer.write(np.zeros((64, 64), np.float32))
    assert not path.exists()


def test_pairs_table_on_a_full_disk(tmp_path):
    import pandas as pd

    from pcreg.errors import disk_full_is_one_line

    out = tmp_path / "pairs.csv"
    _full(tmp_path / "pairs.csv.tmp")
    with pytest.raises(UserError, match="disk full while writing .*pairs.csv"):
        with disk_full_is_one_line(out, tmp_path / "pairs.csv.tmp"):
            pd.DataFrame({"a": range(10_000)}).to_csv(tmp_path / "pairs.csv.tmp", index=False)


def test_other_errors_pass_through(tmp_path):
    from pcreg.errors import disk_full_is_one_line

    with pytest.raises(PermissionError):
        with disk_full_is_one_line(tmp_path / "x"):
            raise PermissionError("not yours")
