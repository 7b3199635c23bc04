"""TransMorph-2D (Chen et al., Medical Image Analysis 2022), implemented in :mod:`baselines._transmorph_net`.

No maintained package provides TransMorph, so the network is written from the paper
and its official 2-D configuration (Swin encoder, patch 4, embed 96, depths 2/2/4/2,
heads 4/4/8/8, window 8; conv decoder with skips; registration head; spatial
transformer): 31,013,570 parameters. ``variant: transmorph-small`` (embed 48, heads
4/4/4/4) has 7,776,650 and is the one for CPU runs.

Unsupervised loss as in the paper: local NCC (or MSE) between the warped moving and
the fixed image plus ``lambda`` times the l2 gradient ("diffusion") regulariser of
the field (weight 1 in the paper). Optimiser as in the official code: Adam, lr 1e-4,
no weight decay, no gradient clipping. The field is in the suite's convention and the
registered image is produced by the shared warping routine.

Like VoxelMorph, TransMorph was designed for affinely pre-aligned inputs (its benchmark
data are pre-aligned); trained on the raw pairs it barely moves (docs/LEARNED.md has the
measured numbers and the scripts). The same two configurable additions apply:
``prealign`` (the suite's SIFT affine/homography or ANTs' affine stage composed with the
network's flow, :mod:`baselines._prealign`; its row "ANTs affine" shows the stage alone)
and ``supervision`` (end-point error to the ground-truth field where the training batches
have one; the label then says "GT-field sup."). Both are off by default.
"""

from __future__ import annotations

from typing import Any, ClassVar

from baselines._prealign import PREALIGN_PARAMS
from pcreg.methods.learned import LearnedMethod, with_training_params

_MODEL_PARAMS: dict[str, Any] = {
    "variant": {
        "enum": ["transmorph", "transmorph-small"], "default": "transmorph",
        "description": "transmorph: the official 2-D model (embed 96, ~31M params); "
        "transmorph-small: embed 48 (~7.8M), for CPU configs.",
    },
    "loss": {"enum": ["ncc", "mse"], "default": "ncc", "description": "Image similarity: local NCC or MSE."},
    "lambda": {
        "type": "number", "minimum": 0, "default": 1.0,
        "description": "Weight of the l2 field-gradient (diffusion) regulariser (paper: 1 with NCC).",
    },
    "ncc_window": {"type": "integer", "minimum": 3, "default": 9, "description": "Local NCC window."},
    "drop_path_rate": {
        "type": "number", "minimum": 0, "maximum": 1, "default": 0.3,
        "description": "Stochastic depth of the Swin encoder (official configuration: 0.3).",
    },
    "flow_init_std": {
        "type": "number", "exclusiveMinimum": 0, "default": 1e-5,
        "description": "Standard deviation of the registration head's initial weights (official: 1e-5, a flow "
        "near zero at the start; docs/LEARNED.md measures larger values).",
    },
    **PREALIGN_PARAMS,
}


class TransMorph(LearnedMethod):
    """Unsupervised TransMorph-2D."""

    name = "transmorph"
    label = "TransMorph"
    outputs_field = True
    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = with_training_params(
        _MODEL_PARAMS, lr=1e-4, weight_decay=0.0, grad_clip=0.0
    )

    def build_model(self):  # noqa: ANN201 - torch.nn.Module
        from baselines._transmorph_net import build_transmorph

        return build_transmorph(self.params["variant"], drop_path_rate=float(self.params["drop_path_rate"]),
                                flow_init_std=float(self.params["flow_init_std"]))

    def _loss_module(self):  # noqa: ANN202
        if getattr(self, "_loss", None) is None:
            from baselines._registration_losses import RegistrationLoss

            self._loss = RegistrationLoss(self.params["loss"], self.params["lambda"], self.params["ncc_window"])
        return self._loss

    def _prealigner(self):  # noqa: ANN202
        if getattr(self, "_pre", None) is None:
            from baselines._prealign import PreAligner

            self._pre = PreAligner(self.params["prealign"], seed=self.seed)
        return self._pre

    def _fields(self, model, moving, fixed):  # noqa: ANN001, ANN202
        """``(network flow, total field)``: the network runs on the pre-aligned moving image."""
        from baselines._prealign import compose
        from baselines._spatial import warp

        pre_align = self._prealigner()
        if not pre_align.enabled:
            flow = model.flow(moving, fixed)
            return flow, flow
        a = pre_align.fields(moving, fixed)
        flow = model.flow(warp(moving, a), fixed)
        return flow, compose(a, flow)

    def training_loss(self, model, moving, fixed, field=None):  # noqa: ANN001, ANN201
        """Similarity of warped moving to fixed + lambda * l2 gradient of the network's flow."""
        from baselines._spatial import warp

        flow, total = self._fields(model, moving, fixed)
        warped = warp(moving, total)
        loss, _ = self._loss_module()(warped, fixed, flow)
        weight = float(self.params["supervision"])
        if weight > 0 and field is not None:
            from baselines._registration_losses import endpoint_error

            loss = loss + weight * endpoint_error(total, field, cap=float(self.params["supervision_cap"]))
        return loss, warped

    def predict(self, model, moving, fixed):  # noqa: ANN001, ANN201
        """The total field (suite convention) and moving warped by it."""
        from baselines._spatial import warp

        _, total = self._fields(model, moving, fixed)
        return warp(moving, total).float(), total.float()
