"""A disk cache of per-pair global transforms that several rows of one run share.

The global start of the fair-start rows (``syn_sift_init``, ``demons_sift_init``) and
the learned rows' pre-alignment (VoxelMorph, TransMorph, and the row that shows it
alone) compute the same field from the same pair: SIFT, a multi-start search and up
to four ANTs affine registrations, about 1 CPU s per 128-px pair. Each row runs in its
own jobs and worker processes, so an in-memory cache cannot share it; this one can.

Where: the folder named by the environment variable :data:`ENV` (the workflow sets
it to ``<data_dir>/.cache``, next to the prepared datasets); unset, nothing is
cached. Key: the kind of result, a version string (the code fingerprint of the
modules that compute it and the libraries' versions, so a code change never reads an
old entry) and the exact bytes and shape of both images. The computation is
deterministic (seeded, one thread), so a run gives the same numbers with or without
the cache; entries are written atomically (a temporary file, then a rename), and an
unreadable or malformed entry is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

#: Environment variable naming the cache folder; unset or empty: no disk cache.
ENV = "PCREG_CACHE_DIR"


@lru_cache(maxsize=8)
def code_version(*modules: str) -> str:
    """A version string for results computed by ``modules`` (paths under the checkout): their code fingerprint
    together with the method stage's code and the key libraries' versions."""
    from pcreg.code_fingerprint import code_fingerprint

    return code_fingerprint("method", extra=modules)


def pair_key(kind: str, version: str, moving: np.ndarray, fixed: np.ndarray) -> str:
    """The cache key of one pair's result: kind, version and the float32 bytes and shapes of both images."""
    h = hashlib.blake2b(digest_size=20)
    for part in (kind, version, repr(np.shape(moving)), repr(np.shape(fixed))):
        h.update(part.encode() + b"\0")
    h.update(np.ascontiguousarray(moving, np.float32).tobytes())
    h.update(np.ascontiguousarray(fixed, np.float32).tobytes())
    return h.hexdigest()


def cached_field(kind: str, version: str, moving: np.ndarray, fixed: np.ndarray,
                 compute: Callable[[], tuple[np.ndarray, str]]) -> tuple[np.ndarray, str]:
    """``compute()`` (a ``(2, H, W)`` field and a short label of how it was found) for the pair, read from the
    disk cache where an entry exists, else computed and stored."""
    root = os.environ.get(ENV, "")
    if not root:
        return compute()
    path = Path(root) / kind / f"{pair_key(kind, version, moving, fixed)}.npz"
    shape = (2, *np.shape(fixed))
    try:
        with np.load(path, allow_pickle=False) as entry:
            field, label = np.asarray(entry["field"], np.float32), str(entry["label"])
        if field.shape == shape and np.all(np.isfinite(field)):
            return field, label
    # absent, partly written by a killed job, or malformed: recompute
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    field, label = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, field=np.asarray(field, np.float32), label=np.asarray(label))
        os.replace(tmp, path)
    except OSError:  # a full or read-only disk costs the cache, not the result
        pass
    return field, label
