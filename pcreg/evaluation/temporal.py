"""Temporal consistency of bidirectional OR-PAM registration (the paper's TNCC and TNCG, Sec. 4.4).

In bidirectional OR-PAM the forward scan fills the **odd** image columns and the
backward scan the **even** ones (the paper's 1-based numbering). A pair of the
OR-PAM datasets is (moving = even-column image, fixed = odd-column image), both
``(H, W)``; registration aligns the even columns to the odd ones.

Indexing decision: the paper's odd columns 1, 3, 5, ... are 0-based indices
0, 2, 4, ..., so a merged frame ``(H, 2W)`` has ``merged[:, 0::2] = odd``
(the fixed image) and ``merged[:, 1::2] = registered even`` (the method's
output). The forward scan's first column is thus the image's first column.

- TNCC: mean NCC of consecutive merged frames of a sequence, pooled over all
  consecutive frame pairs of all sequences ("the mean NCC between all
  consecutive merged frame pairs").
- Odd-only TNCC: the same over the odd-column images alone (the fixed images,
  ``(H, W)``, not upsampled): the physical reference, unaffected by registration.
- TNCG = odd-only TNCC - TNCC (signed; smaller is better, negative when the
  merged frames are more coherent than the odd-only ones).

NCC is :func:`pcreg.metrics.ncc` (global Pearson correlation); a constant
frame has no NCC (NaN) and its frame pairs are left out of the means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pcreg.metrics import ncc


def merge_frame(odd: np.ndarray, even_registered: np.ndarray) -> np.ndarray:
    """Interleave columns into an ``(H, 2W)`` frame: 0-based even columns from ``odd``, odd from ``even_registered``."""
    odd = np.asarray(odd)
    even_registered = np.asarray(even_registered)
    if odd.ndim != 2 or odd.shape != even_registered.shape:
        raise ValueError(f"need two (H, W) images of one shape, got {odd.shape} and {even_registered.shape}")
    merged = np.empty((odd.shape[0], 2 * odd.shape[1]), dtype=np.result_type(odd, even_registered))
    merged[:, 0::2] = odd
    merged[:, 1::2] = even_registered
    return merged


def consecutive_ncc(frames: Sequence[np.ndarray]) -> np.ndarray:
    """NCC of each consecutive pair ``(frames[t], frames[t + 1])``; length ``len(frames) - 1``."""
    return np.array([ncc(frames[t], frames[t + 1]) for t in range(len(frames) - 1)], dtype=np.float64)


def tncc(frames: Sequence[np.ndarray]) -> float:
    """Temporal NCC: mean NCC of consecutive frames (NaN pairs ignored; NaN for fewer than 2 frames)."""
    values = consecutive_ncc(frames)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def odd_only_tncc(odd_frames: Sequence[np.ndarray]) -> float:
    """TNCC of the odd-column (forward-scan, fixed) images alone: the paper's odd-only reference."""
    return tncc(odd_frames)


def tncg(odd_only: float, merged_tncc: float) -> float:
    """Temporal NCC gap: ``odd_only - merged_tncc`` (signed)."""
    return float(odd_only - merged_tncc)


def temporal_pairs(
    sequence: Sequence,
    frame: Sequence[int],
    fixed: np.ndarray,
    registered: np.ndarray,
    max_gap: int | None = None,
) -> pd.DataFrame:
    """NCC of every consecutive frame pair of every sequence, merged and odd-only.

    ``sequence`` and ``frame`` give each pair's sequence id and frame number
    (the manifest's columns, in the row order of ``fixed`` and ``registered``,
    which are ``(N, H, W)`` and may be memory-mapped). Within a sequence frames
    are sorted by number and each is paired with the next one present; with
    ``max_gap`` set, pairs more than ``max_gap`` frames apart are skipped.
    Returns columns ``sequence, frame_a, frame_b, gap, ncc_merged, ncc_odd``.
    """
    meta = pd.DataFrame({"sequence": list(sequence), "frame": np.asarray(frame, dtype=np.int64)})
    if len(meta) != len(fixed) or len(meta) != len(registered):
        raise ValueError(f"{len(meta)} manifest rows but {len(fixed)} fixed and {len(registered)} registered images")
    meta["row"] = np.arange(len(meta))
    rows = []
    for seq, grp in meta.groupby("sequence", sort=True):
        grp = grp.sort_values("frame", kind="stable")
        if grp["frame"].duplicated().any():
            raise ValueError(f"sequence {seq!r} has duplicate frame numbers")
        idx, frames = grp["row"].to_numpy(), grp["frame"].to_numpy()
        prev_merged = prev_odd = None
        for k, (i, f) in enumerate(zip(idx, frames)):
            odd = np.asarray(fixed[i], dtype=np.float64)
            merged = merge_frame(odd, np.asarray(registered[i], dtype=np.float64))
            if k > 0:
                gap = int(f - frames[k - 1])
                if max_gap is None or gap <= max_gap:
                    rows.append({"sequence": seq, "frame_a": int(frames[k - 1]), "frame_b": int(f), "gap": gap,
                                 "ncc_merged": ncc(prev_merged, merged), "ncc_odd": ncc(prev_odd, odd)})
            prev_merged, prev_odd = merged, odd
    return pd.DataFrame(rows, columns=["sequence", "frame_a", "frame_b", "gap", "ncc_merged", "ncc_odd"])


def per_sequence(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per-sequence ``n_frame_pairs, tncc, odd_only_tncc, tncg`` from :func:`temporal_pairs` output."""
    g = pairs.groupby("sequence", sort=True)
    out = pd.DataFrame({
        "n_frame_pairs": g.size(),
        "tncc": g["ncc_merged"].mean(),
        "odd_only_tncc": g["ncc_odd"].mean(),
    })
    out["tncg"] = out["odd_only_tncc"] - out["tncc"]
    return out.reset_index()


def temporal_summary(pairs: pd.DataFrame) -> dict[str, float]:
    """Dataset-level TNCC, odd-only TNCC and TNCG, pooled over all consecutive frame pairs.

    Also ``mean_abs_sequence_tncg``, the mean over sequences of ``|odd-only - TNCC|``
    (one reading of the paper's printed TNCG, which is not reproducible from its
    printed TNCCs with the signed definition; see ``pcreg/data/README.md``).
    """
    merged = pairs["ncc_merged"].to_numpy(np.float64)
    odd = pairs["ncc_odd"].to_numpy(np.float64)
    t = float(np.nanmean(merged)) if np.any(~np.isnan(merged)) else float("nan")
    o = float(np.nanmean(odd)) if np.any(~np.isnan(odd)) else float("nan")
    seq = per_sequence(pairs) if len(pairs) else pd.DataFrame({"tncg": []})
    return {
        "tncc": t,
        "odd_only_tncc": o,
        "tncg": tncg(o, t),
        "mean_abs_sequence_tncg": float(seq["tncg"].abs().mean()) if len(seq) else float("nan"),
        "n_frame_pairs": int(len(pairs)),
        "n_sequences": int(pairs["sequence"].nunique()) if len(pairs) else 0,
    }
