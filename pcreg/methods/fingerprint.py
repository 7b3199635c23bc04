"""Fingerprints of what a learned model was trained from: method parameters and prepared data.

A training checkpoint stores ``training_fingerprint(...)``; the harness resumes it only
when the fingerprint of the current run is the same (issue 12 item 10), so a changed
learning rate, width or re-prepared dataset retrains instead of reusing old weights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pcreg.code_fingerprint import method_code  # noqa: F401 - the training fingerprint's code part

#: Params that change how a run is shown or executed, not what it learns.
COSMETIC_PARAMS = frozenset({"progress", "num_workers", "inference_batch_size"})
_CHUNK = 1 << 22


def digest(obj: Any) -> str:
    """Stable hex digest of a JSON-serialisable object (keys sorted)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def split_fingerprint(split: Any) -> str:
    """Content digest of one split: its files on disk when it has a root, else its arrays."""
    root = getattr(split, "root", None)
    if root is not None:
        folder = Path(root) / split.name
        parts = {p.name: _file_digest(p) for p in sorted(folder.iterdir()) if p.is_file()}
        meta = Path(root) / "dataset.json"
        if meta.is_file():
            parts["dataset.json"] = _file_digest(meta)
        return digest(parts)
    h = hashlib.blake2b(digest_size=16)
    for name in ("moving", "fixed", "field"):
        arr = getattr(split, name, None)
        if arr is not None:
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def training_fingerprint(params: dict[str, Any], seed: int, train: Any, val: Any, code: str = "") -> str:
    """Digest of the parameters that shape training (cosmetic ones left out), the seed, both splits' data and
    ``code``, the fingerprint of the code that trains (:func:`method_code`): a checkpoint written by other
    training code is not resumed, as a rerun of the fit job after a code change must not reuse it."""
    used = {k: v for k, v in params.items() if k not in COSMETIC_PARAMS}
    data = [split_fingerprint(s) if s is not None and len(s) else None for s in (train, val)]
    return digest({"params": used, "seed": seed, "data": data, **({"code": code} if code else {})})

