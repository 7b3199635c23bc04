"""Classical pre-alignment stage for the learned deformable baselines, and field composition.

VoxelMorph and TransMorph were designed for affinely pre-aligned inputs (both
papers' data are registered affinely in preprocessing), leaving the network only
the non-linear residual. The suite's pairs are not pre-aligned: they carry global
affine/projective components and appearance change, and a single-scale local-NCC
objective trained from scratch does not recover them (docs/LEARNED.md). This module
supplies the stage the papers assume, as a documented, configurable part of a
method's row ("VoxelMorph + SIFT affine"):

- :class:`PreAligner` fits a global transform per pair with one of the suite's own
  baselines -- SIFT (:class:`baselines.sift.SIFT`: SIFT + ratio test + RANSAC affine
  or homography, with its sanity checks and identity fallback) or ANTs' affine stage
  (:class:`baselines.syn.SyN` with ``type_of_transform: Affine``: mutual information,
  multi-resolution), or the fair start of SyN and Demons (``global-start``,
  :func:`baselines._global_init.global_field` with ``init: auto``), which also finds
  the large projective motion of FIRE's P class -- and returns it as a dense pull-back
  field ``a`` (docs/CONVENTIONS.md); the ANTs and global-start fields are shared on
  disk with the rows that compute the same (:mod:`pcreg.methods.pair_cache`);
- :func:`compose` turns ``a`` and the network's field ``v``, predicted on the
  pre-aligned moving image ``pre(q) = moving(q + a(q))``, into the one total
  pull-back field: ``warped(p) = pre(p + v(p)) = moving(p + v(p) + a(p + v(p)))``,
  so ``u(p) = v(p) + a(p + v(p))``.

The networks are trained and evaluated on the pre-aligned moving images, and the
registered image is the moving image warped once by ``u`` (one interpolation).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: method modules import this file for its schema only
    import torch

#: Pre-alignment choices; "none" keeps the method as published (no pre-alignment).
PREALIGN_CHOICES = ("none", "sift-affine", "sift-homography", "ants-affine", "global-start")

#: The two JSON-schema properties VoxelMorph and TransMorph share: ground-truth supervision and pre-alignment.
PREALIGN_PARAMS: dict = {
    "supervision": {
        "type": "number", "minimum": 0, "default": 0.0,
        "description": "Weight of the end-point error to the ground-truth field, added to the unsupervised loss "
        "where the training split stores fields (the synthetic sets); 0 = unsupervised, as published. Pairs "
        "without a field always train unsupervised.",
    },
    "supervision_cap": {
        "type": "number", "minimum": 0, "default": 0.0,
        "description": "End-point errors above this many px count as this value in the supervision term (no "
        "gradient): pairs the pre-alignment got grossly wrong do not drive training; 0 = no cap.",
    },
    "prealign": {
        "enum": list(PREALIGN_CHOICES), "default": "none",
        "description": "Classical pre-alignment composed with the learned field (baselines._prealign; the papers "
        "assume affinely pre-aligned inputs): none, the suite's SIFT fitting an affine transform or a homography, "
        "ANTs' affine stage (mutual information), or global-start: the fair start of SyN and Demons "
        "(baselines._global_init, init: auto: SIFT's homography, ANTs' affine from a multi-start search or the "
        "identity, whichever has the highest overlap-weighted normalised mutual information per pair).",
    },
}

def compose(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Total pull-back field of warping by ``a`` first and then by ``v``: ``u(p) = v(p) + a(p + v(p))``.

    ``a`` is the pre-alignment field (moving -> pre-aligned image), ``v`` the field
    predicted on the pre-aligned image; both ``(B, 2, H, W)`` pixel fields. ``a`` is
    sampled bilinearly with replicated borders (the suite's warp).
    """
    from baselines._spatial import warp

    return v + warp(a.to(v.dtype), v)


class PreAligner:
    """Per-pair global pre-alignment fields from the suite's SIFT or ANTs (affine) baselines (cached per pair).

    ``mode`` is one of :data:`PREALIGN_CHOICES`. The cache is keyed by the bytes of
    the pair, so repeated training epochs do not refit SIFT; it is bounded by the
    number of distinct pairs seen.
    """

    def __init__(self, mode: str, seed: int = 0, threads: int = 1, max_cache: int = 100_000):
        # One thread by default: ANTs' affine stage is bit-reproducible only with a fixed seed and one ITK thread
        # (baselines/syn.py), and the pre-alignment feeds training, so it must be deterministic.
        if mode not in PREALIGN_CHOICES:
            raise ValueError(f"prealign must be one of {PREALIGN_CHOICES}, got {mode!r}")
        self.mode = mode
        self.max_cache = int(max_cache)
        self._cache: dict[bytes, np.ndarray] = {}
        self._method = None
        self.seed = int(seed)
        if mode not in ("none", "global-start"):
            from pcreg.methods.registry import build_method

            if mode == "ants-affine":  # intensity-based (mutual information), robust where SIFT matches fail
                self._method = build_method("syn", {"type_of_transform": "Affine"}, seed=seed, threads=threads)
            else:
                model = "affine" if mode == "sift-affine" else "homography"
                self._method = build_method("sift", {"model": model}, seed=seed, threads=threads)

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def field(self, moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        """Pull-back field ``(2, H, W)`` of the global transform (zeros where SIFT fails)."""
        key = hashlib.blake2b(np.ascontiguousarray(moving, np.float32).tobytes()
                              + np.ascontiguousarray(fixed, np.float32).tobytes(), digest_size=16).digest()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        out = self._compute(np.asarray(moving, np.float32), np.asarray(fixed, np.float32))
        if len(self._cache) < self.max_cache:
            self._cache[key] = out
        return out

    def _compute(self, moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        if self.mode == "global-start":
            from baselines._global_init import global_field

            return global_field(moving, fixed, "auto", self.seed)[0]
        if self.mode == "ants-affine":  # the ants_affine row and both learned rows compute this: share it on disk
            from pcreg.methods.pair_cache import cached_field, code_version

            version = code_version("baselines/_prealign.py", "baselines/syn.py")
            return cached_field(f"ants-affine-seed{self.seed}", version, moving, fixed,
                                lambda: (np.asarray(self._method.register(moving, fixed).field, np.float32), ""))[0]
        return np.asarray(self._method.register(moving, fixed).field, np.float32)

    def fields(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """Pre-alignment fields ``(B, 2, H, W)`` for a batch ``(B, 1, H, W)``, on the batch's device."""
        import torch

        m = moving.detach().float().cpu().numpy()[:, 0]
        f = fixed.detach().float().cpu().numpy()[:, 0]
        out = np.stack([self.field(mi, fi) for mi, fi in zip(m, f)])
        return torch.from_numpy(out).to(moving.device)


class PreAlignmentRow:
    """Mixin of the rows that show a pre-alignment alone (``ants_affine``, ``global_start``): register with the
    same :class:`PreAligner` (mode :attr:`PREALIGN`, the method's seed) as the learned rows, so the two fields are
    identical pair for pair."""

    PREALIGN = "none"

    def register(self, moving: np.ndarray, fixed: np.ndarray):  # noqa: ANN201 - a pcreg Registration
        from pcreg.methods.base import Registration

        if getattr(self, "_pre", None) is None:
            self._pre = PreAligner(self.PREALIGN, seed=self.seed)
        for what, image in (("moving", moving), ("fixed", fixed)):
            if float(np.ptp(image)) < 1e-6:
                return Registration(failed=True, reason=f"{what} image is constant")
        return Registration(field=self._pre.field(np.asarray(moving, np.float32), np.asarray(fixed, np.float32)))
