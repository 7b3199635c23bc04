"""PCReg-Net as a suite method: a trained image-to-image registration network.

It outputs the registered image directly and no displacement field
(``outputs_field = False``), so geometric metrics (TRE, EPE, folding) are empty
for it. The model is :class:`pcreg.models.pcreg_net.PCRegNet`; training uses the
shared harness (:mod:`pcreg.training`) through :class:`baselines.learned.LearnedMethod`.

Loss: ``L(final, F) + λ L(coarse, F)`` with ``L = a L1 + b MSE + c (1 - SSIM)``
(SSIM with the suite's 7x7 uniform window). The paper's weights were lost in
extraction; the defaults are ``a = b = c = 1`` and ``λ = 0.5`` (the auxiliary
coarse loss at half the weight of the main loss). The ablations are params:
``contrast: false``, ``injection: false``, ``single_stage: true``, ``aux_weight: 0``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from baselines.learned import LearnedMethod, with_training_params

MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "registration_input": {
        "enum": ["moving", "moving_fixed"], "default": "moving",
        "description": "Input of the registration U-Net: the moving image alone (paper wording) or moving+fixed.",
    },
    "contrast": {"type": "boolean", "default": True,
                 "description": "Use the reference extractor and the multi-scale contrast module (ablation: false)."},
    "injection": {"type": "boolean", "default": True,
                  "description": "Inject projected contrast features into the refinement decoder (ablation: false)."},
    "single_stage": {"type": "boolean", "default": False,
                     "description": "Registration U-Net only; the coarse image is the output (ablation: true)."},
    "base_width": {"type": "integer", "minimum": 1, "default": 32,
                   "description": "Channels of the first level (levels have 1x, 2x, 4x, 8x); 32 = 2.60M params."},
    "loss_l1": {"type": "number", "minimum": 0, "default": 1.0, "description": "Weight a of L1 in L."},
    "loss_mse": {"type": "number", "minimum": 0, "default": 1.0, "description": "Weight b of MSE in L."},
    "loss_ssim": {"type": "number", "minimum": 0, "default": 1.0, "description": "Weight c of (1 - SSIM) in L."},
    "aux_weight": {"type": "number", "minimum": 0, "default": 0.5,
                   "description": "λ, weight of the auxiliary loss on the coarse image (ablation: 0)."},
    "clip_output": {"type": "boolean", "default": True,
                    "description": "Clip the predicted image to [0, 1], the range of every image in the suite."},
}


class PCRegNetMethod(LearnedMethod):
    """PCReg-Net (Progressive Contrast-Guided Registration)."""

    name = "pcreg_net"
    label = "PCReg-Net"
    outputs_field = False
    PARAMS_SCHEMA: ClassVar[dict[str, Any]] = with_training_params(MODEL_PARAMS)

    def build_model(self):  # noqa: ANN201 - nn.Module
        from pcreg.models.pcreg_net import PCRegNet

        p = self.params
        return PCRegNet(
            base_width=p.get("base_width", 32),
            registration_input=p.get("registration_input", "moving"),
            contrast=p.get("contrast", True),
            injection=p.get("injection", True),
            single_stage=p.get("single_stage", False),
        )

    def _loss(self):  # noqa: ANN202
        from pcreg.losses import CompositeLoss

        p = self.params
        return CompositeLoss(l1=p.get("loss_l1", 1.0), mse=p.get("loss_mse", 1.0), ssim=p.get("loss_ssim", 1.0))

    def training_loss(self, model, moving, fixed, field=None):  # noqa: ANN001, ANN201, ARG002 - image loss only
        from pcreg.losses import pcreg_loss

        out = model(moving, fixed)
        loss = pcreg_loss(out.final, out.coarse, fixed, self._loss(), self.params.get("aux_weight", 0.5))
        return loss, out.final

    def prepare_inference(self, model):  # noqa: ANN001, ANN201
        """BatchNorm folded into the convs, channels_last, and (CPU) freed memory kept for reuse.

        See :mod:`pcreg.models.inference`: the same function up to float rounding, faster.
        """
        from pcreg.models.inference import keep_freed_memory, optimize_for_inference

        device = self.torch_device()
        if device.type == "cpu":
            keep_freed_memory()
        return optimize_for_inference(model, device)

    def predict(self, model, moving, fixed):  # noqa: ANN001, ANN201
        image = model(moving, fixed).final
        if self.params.get("clip_output", True):
            image = image.clamp(0.0, 1.0)
        return image, None
