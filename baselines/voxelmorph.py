"""VoxelMorph (Balakrishnan et al., IEEE TMI 2019) from the official ``voxelmorph`` package.

The network is ``voxelmorph.nn.models.VxmPairwise`` of voxelmorph 0.3.4 (PyTorch),
trained unsupervised through the suite's harness with neurite's losses (the loss
package the official code now uses): local NCC (9x9 window) or MSE, plus
``lambda`` times the l2 spatial gradient of the field; ``lambda`` defaults to the
paper's choice, 1 with NCC and 0.01 with MSE. Optimiser settings follow the paper
(Adam, lr 1e-4, no weight decay, no gradient clipping).

Configured as close to the paper's VoxelMorph-2 as the package allows: encoder
16/32/32/32 (3x3 conv + LeakyReLU 0.2 per level), a 32-channel conv at 1/16,
decoder 32/32/32/32 with skip concatenation, nearest-neighbour upsampling. What
0.3.4 cannot express, and the consequences:

- the paper's two extra full-resolution convs (16, 16) at the end of the decoder and
  its 3x3 16->2 flow conv: the package ends with a 1x1 conv to 2 channels followed by
  its 3x3 2->2 "flow layer" (weights ~ N(0, 1e-5), ``flow_init_std``; the default config
  uses 1e-2, docs/LEARNED.md);
- downsampling is conv + 2x2 max-pooling (the paper's first version used stride-2 convs;
  the later official PyTorch code also max-pools);
- the package's spatial transformer (zero padding) is not used: training and
  predictions warp with the suite's routine (replicated borders).

Parameter count (2-D, default features): 102,040 (the paper's 2-D VoxelMorph-2
layout would have 109,170). ``integration_steps > 0`` turns on the diffeomorphic
variant (scaling and squaring of a stationary velocity field, Dalca et al. 2018, 7
steps there); the smoothness term then acts on the velocity, as in the official code.
Image sizes that are not a multiple of ``2 ** len(enc_features)`` are padded
(edge-replicated, bottom/right) and the field is cropped back.

Why it did not register, and what the suite's row adds (docs/LEARNED.md has the measured
numbers and the scripts that produce them): trained on the raw pairs, the network stays
near the identity; optimising a free field under the
same single-scale local-NCC objective reaches a lower loss than the ground truth, so
the objective itself does not point at the ground truth on pairs with global
global motion and appearance change. The paper assumes affinely
pre-aligned inputs. Two configurable additions, both off by default (the published
method) and named in the row's label where used:

- ``prealign``: a classical global stage (the suite's SIFT + RANSAC affine or
  homography, :mod:`baselines._prealign`) composed with the network's field,
  ``u(p) = v(p) + a(p + v(p))``; the network sees the pre-aligned moving image and
  the registered image is the moving image warped once by ``u``;
- ``supervision``: weight of the end-point error to the ground-truth field, used on
  training pairs that have one (the synthetic sets); pairs without a field (a folder
  dataset) train on the unsupervised loss alone.

The smoothness term acts on the network's own field (not on the pre-alignment), and
the training loss warps with the suite's routine (replicated borders), the same warp
that produces the registered images.
"""

from __future__ import annotations

from typing import Any, ClassVar

from baselines._prealign import PREALIGN_PARAMS
from pcreg.methods.learned import LearnedMethod, with_training_params

_MODEL_PARAMS: dict[str, Any] = {
    "enc_features": {
        "type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "default": [16, 32, 32, 32],
        "description": "Encoder channels per level (paper: 16/32/32/32); H and W are padded to 2**levels.",
    },
    "dec_features": {
        "type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "default": [32, 32, 32, 32],
        "description": "Channels of the bottleneck conv and of the up-sampling convs but the last "
        "(same length as enc_features; paper: 32s).",
    },
    "integration_steps": {
        "type": "integer", "minimum": 0, "default": 0,
        "description": "Scaling-and-squaring steps (0 = plain displacement as in VoxelMorph TMI 2019; "
        "7 = diffeomorphic VoxelMorph, MICCAI 2018).",
    },
    "loss": {"enum": ["ncc", "mse"], "default": "ncc", "description": "Image similarity: local NCC or MSE."},
    "lambda": {
        "type": ["number", "null"], "minimum": 0, "default": None,
        "description": "Weight of the l2 field-gradient regulariser; null = the paper's value "
        "(1 with NCC, 0.01 with MSE).",
    },
    "ncc_window": {"type": "integer", "minimum": 3, "default": 9, "description": "Local NCC window (paper: 9)."},
    "flow_init_std": {
        "type": "number", "exclusiveMinimum": 0, "default": 1e-5,
        "description": "Standard deviation of the flow layer's initial weights (the package's default 1e-5, "
        "voxelmorph issue #527; docs/LEARNED.md measures larger values).",
    },
    **PREALIGN_PARAMS,
}


class VoxelMorph(LearnedMethod):
    """Unsupervised VoxelMorph via ``voxelmorph.nn.models.VxmPairwise``."""

    name = "voxelmorph"
    label = "VoxelMorph"
    outputs_field = True
    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = with_training_params(
        _MODEL_PARAMS, lr=1e-4, weight_decay=0.0, grad_clip=0.0
    )

    @property
    def size_multiple(self) -> int:
        return 2 ** len(self.params["enc_features"])

    @property
    def lam(self) -> float:
        from baselines._registration_losses import VOXELMORPH_LAMBDA

        lam = self.params["lambda"]
        return VOXELMORPH_LAMBDA[self.params["loss"]] if lam is None else float(lam)

    def build_model(self):  # noqa: ANN201 - torch.nn.Module
        import voxelmorph as vxm
        from torch import nn

        enc, dec = list(self.params["enc_features"]), list(self.params["dec_features"])
        if len(dec) != len(enc):
            raise ValueError(f"voxelmorph: dec_features needs {len(enc)} entries (one per encoder level), got {dec}")
        return vxm.nn.models.VxmPairwise(
            ndim=2,
            source_channels=1,
            target_channels=1,
            nb_features=[enc, dec],
            activations=nn.LeakyReLU(0.2),  # paper: LeakyReLU 0.2 (the package default is ReLU)
            integration_steps=int(self.params["integration_steps"]),
            flow_initializer=float(self.params["flow_init_std"]),
            unet_kwargs={"upsample_mode": "nearest"},  # paper: nearest-neighbour upsampling
        )

    def _loss_module(self):  # noqa: ANN202
        if getattr(self, "_loss", None) is None:
            from baselines._registration_losses import RegistrationLoss

            self._loss = RegistrationLoss(self.params["loss"], self.lam, self.params["ncc_window"])
        return self._loss

    def _prealigner(self):  # noqa: ANN202
        if getattr(self, "_pre", None) is None:
            from baselines._prealign import PreAligner

            self._pre = PreAligner(self.params["prealign"], seed=self.seed)
        return self._pre

    def _fields(self, model, moving, fixed):  # noqa: ANN001, ANN202
        """``(velocity, total displacement)`` of a batch: the network runs on the pre-aligned moving image.

        'velocity' is the network output before integration (the displacement when
        integration_steps == 0); the total displacement composes the pre-alignment with the
        integrated network field (baselines._prealign.compose).
        """
        from baselines._prealign import compose
        from baselines._spatial import pad_to_multiple, warp

        pre_align = self._prealigner()
        a = pre_align.fields(moving, fixed) if pre_align.enabled else None
        source = moving if a is None else warp(moving, a)
        m, (h, w) = pad_to_multiple(source, self.size_multiple)
        f, _ = pad_to_multiple(fixed, self.size_multiple)
        velocity = model(m, f, return_field_type="velocity")
        disp = model.velocity_field_integrator(velocity) if model.integration_steps > 0 else velocity
        velocity, disp = velocity[..., :h, :w], disp[..., :h, :w]
        return velocity, (disp if a is None else compose(a, disp))

    def training_loss(self, model, moving, fixed, field=None):  # noqa: ANN001, ANN201
        """Similarity of the warped moving image to fixed + lambda * smoothness of the network's (velocity) field.

        The moving image is warped once by the total field with the suite's routine (replicated
        borders), the same warp that produces the registered images at inference.
        """
        from baselines._spatial import warp

        velocity, total = self._fields(model, moving, fixed)
        warped = warp(moving, total)
        loss, _ = self._loss_module()(warped, fixed, velocity)
        weight = float(self.params["supervision"])
        if weight > 0 and field is not None:
            from baselines._registration_losses import endpoint_error

            loss = loss + weight * endpoint_error(total, field, cap=float(self.params["supervision_cap"]))
        return loss, warped

    def predict(self, model, moving, fixed):  # noqa: ANN001, ANN201
        """The total displacement field (suite convention, which is the package's) and moving warped by it."""
        from baselines._spatial import warp

        _, field = self._fields(model, moving.float(), fixed.float())
        return warp(moving.float(), field.float()), field.float()
