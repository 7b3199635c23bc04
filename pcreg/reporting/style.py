"""The one mapping from run id to colour, used by every figure."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")
from matplotlib import colormaps  # noqa: E402

#: Fixed colours for the suite's run ids (tab10 plus shades of PCReg-Net's red for its ablations).
KNOWN_COLORS: dict[str, str] = {
    "identity": "#7f7f7f",
    "sift": "#8c564b",
    "demons": "#1f77b4",
    "horn_schunck": "#17becf",
    "syn": "#2ca02c",
    "voxelmorph": "#9467bd",
    "transmorph": "#ff7f0e",
    "pcreg_net": "#d62728",
    "pcreg_net_no_contrast": "#f08080",
    "pcreg_net_no_injection": "#b03060",
    "pcreg_net_single_stage": "#e377c2",
    "pcreg_net_no_aux": "#8b0000",
    "fixed-copy": "#000000",
}
ORACLE_COLOR = KNOWN_COLORS["fixed-copy"]


def method_color(run_id: str) -> str:
    """The colour of a run: fixed for known ids, else a tab20 colour chosen by a stable hash of the id."""
    if run_id in KNOWN_COLORS:
        return KNOWN_COLORS[run_id]
    cmap = colormaps["tab20"]
    rgba = cmap(zlib.crc32(run_id.encode()) % cmap.N)
    return "#{:02x}{:02x}{:02x}".format(*(int(round(255 * c)) for c in rgba[:3]))


def method_colors(run_ids: Iterable[str]) -> dict[str, str]:
    """``{run_id: colour}`` for several runs."""
    return {r: method_color(r) for r in run_ids}
