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
    "elastix": "#bcbd22",
    "ants_affine": "#98df8a",
    "global_start": "#c5b0d5",
    "ground_truth": "#393b79",
    "voxelmorph": "#9467bd",
    "transmorph": "#ff7f0e",
    "pcreg_net": "#d62728",
    "pcreg_net_no_contrast": "#f08080",
    "pcreg_net_no_injection": "#b03060",
    "pcreg_net_single_stage": "#e377c2",
    "pcreg_net_no_aux": "#8b0000",
    "pcreg_net_moving_fixed": "#ff9896",
    "fixed-copy": "#000000",
}
ORACLE_COLOR = KNOWN_COLORS["fixed-copy"]


def _hex(rgba: tuple[float, ...]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(round(255 * c)) for c in rgba[:3]))


#: Colours left for other run ids (the user's methods): tab20 and Dark2 minus the colours taken above and the
#: pale ones (unreadable as text on white).
_TAKEN = {c.lower() for c in KNOWN_COLORS.values()}
SPARE_COLORS: list[str] = [
    c for c in dict.fromkeys(_hex(colormaps[name](i)) for name, n in (("Dark2", 8), ("tab20", 20)) for i in range(n))
    if c not in _TAKEN and sum(int(c[k:k + 2], 16) for k in (1, 3, 5)) < 600
]


def method_color(run_id: str) -> str:
    """The colour of a run in every figure: fixed for the suite's ids, else one of :data:`SPARE_COLORS` chosen by
    a stable hash of the id (so a user's method never takes a built-in method's colour)."""
    if run_id in KNOWN_COLORS:
        return KNOWN_COLORS[run_id]
    return SPARE_COLORS[zlib.crc32(run_id.encode()) % len(SPARE_COLORS)]


def method_colors(run_ids: Iterable[str]) -> dict[str, str]:
    """``{run_id: colour}`` for several runs."""
    return {r: method_color(r) for r in run_ids}
