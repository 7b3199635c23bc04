"""Bounded-memory reading and writing of ``.npy`` arrays, row block by row block.

The dataset and result arrays can be larger than memory (26,550 OR-PAM pairs at
256x256 are ~27 GB with their fields). Reading them through ``np.load(mmap_mode="r")``
is correct but every page touched stays mapped, so a process that walks a whole
split shows the split's size as resident memory (reclaimable page cache, but a
Slurm job's accounting and ``ru_maxrss`` count it). The helpers here use plain
positioned reads and sequential writes instead, so a process holds only the block
it works on:

- :func:`read_rows` reads rows ``[start, stop)`` of an ``.npy`` file into memory;
- :class:`NpyRowWriter` writes an ``.npy`` file of known shape row block by block
  (atomically: under a temporary name, renamed by :meth:`NpyRowWriter.close`);
- :class:`PairRows` is a map-style dataset of ``(moving, fixed)`` pairs of a
  prepared split that reads one pair per item (usable by ``torch.utils.data.DataLoader``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pcreg.errors import disk_full_is_one_line


def npy_layout(path: str | Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, shape, data_offset)`` of a C-ordered ``.npy`` file, read from its header only."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"{path}: .npy format version {version} is not supported")
        if fortran:
            raise ValueError(f"{path}: Fortran-ordered arrays are not supported")
        if dtype.hasobject:
            raise ValueError(f"{path}: object arrays are not supported")
        return dtype, tuple(shape), fh.tell()


def read_rows(path: str | Path, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` (along axis 0) of an ``.npy`` file, read without memory-mapping it."""
    dtype, shape, offset = npy_layout(path)
    start, stop = max(0, start), min(stop, shape[0])
    row_items = int(np.prod(shape[1:], dtype=np.int64))
    count = max(0, stop - start) * row_items
    with open(path, "rb") as fh:
        fh.seek(offset + start * row_items * dtype.itemsize)
        data = np.fromfile(fh, dtype=dtype, count=count)
    if data.size != count:
        raise ValueError(f"{path}: truncated (rows {start}:{stop} of {shape[0]} could not be read)")
    return data.reshape((max(0, stop - start), *shape[1:]))


def iter_blocks(n: int, block: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of at most ``block`` rows covering ``range(n)``."""
    for start in range(0, n, max(1, block)):
        yield start, min(n, start + max(1, block))


class NpyRowWriter:
    """Write an ``(n, *row_shape)`` ``.npy`` file row block by row block, in order.

    Rows go straight to the file (no memory map, no array of the whole file), so
    memory stays at one block. The file appears at ``path`` only on :meth:`close`
    after exactly ``n`` rows were written; use as a context manager.
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype: np.dtype | type = np.float32):
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.rows = 0
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        with disk_full_is_one_line(self.path, self.tmp):
            np.lib.format.write_array_header_2_0(self._fh, header)

    def write(self, block: np.ndarray) -> None:
        """Append rows (``(k, *row_shape)``, or one row of ``row_shape``)."""
        block = np.asarray(block, dtype=self.dtype)
        if block.shape == self.shape[1:]:
            block = block[None]
        if block.shape[1:] != self.shape[1:]:
            raise ValueError(f"{self.path.name}: rows of shape {block.shape[1:]}, expected {self.shape[1:]}")
        if self.rows + len(block) > self.shape[0]:
            raise ValueError(f"{self.path.name}: more than {self.shape[0]} rows written")
        with disk_full_is_one_line(self.path, self.tmp):
            self._fh.write(np.ascontiguousarray(block).tobytes())
        self.rows += len(block)

    def close(self) -> Path:
        """Check every row was written and move the file into place."""
        with disk_full_is_one_line(self.path, self.tmp):
            self._fh.close()
        if self.rows != self.shape[0]:
            self.abort()
            raise ValueError(f"{self.path.name}: {self.rows} of {self.shape[0]} rows written")
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Discard the partial file."""
        with contextlib.suppress(OSError):  # a full disk fails the final flush too: the file goes anyway
            self._fh.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> NpyRowWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class PairRows:
    """Map-style dataset of ``(moving, fixed)`` float32 pairs of a prepared split, one read per item.

    Each item is read with a positioned read of two rows, so iterating a whole split
    (e.g. a training epoch through ``torch.utils.data.DataLoader`` with workers)
    keeps resident memory at the batches in flight, not the split. Picklable, so
    it can be handed to DataLoader worker processes.
    """

    def __init__(self, root: str | Path, split: str, *, with_field: bool = False):
        folder = Path(root) / split
        self.paths = {"moving": folder / "moving.npy", "fixed": folder / "fixed.npy"}
        if with_field:
            self.paths["field"] = folder / "field.npy"
        self.layouts = {k: npy_layout(p) for k, p in self.paths.items()}
        self.n = self.layouts["moving"][1][0]

    def __len__(self) -> int:
        return self.n

    def _row(self, key: str, i: int) -> np.ndarray:
        dtype, shape, offset = self.layouts[key]
        items = int(np.prod(shape[1:], dtype=np.int64))
        with open(self.paths[key], "rb") as fh:
            fh.seek(offset + i * items * dtype.itemsize)
            return np.fromfile(fh, dtype=dtype, count=items).reshape(shape[1:])

    def __getitem__(self, i: int) -> tuple[np.ndarray, ...]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return tuple(self._row(k, i) for k in self.paths)
