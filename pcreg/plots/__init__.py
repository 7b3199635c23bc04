"""Result figures (box plots, speed vs accuracy, FIRE success curves, training curves) and their shared style.

One colour per run id (:func:`method_color`) is used by every figure, so a
method has the same colour on every plot of every dataset.
"""

from __future__ import annotations

from pcreg.plots.style import ORACLE_COLOR, method_color, method_colors

__all__ = ["ORACLE_COLOR", "method_color", "method_colors"]
