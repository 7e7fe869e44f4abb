"""The pixel-attribution baselines InterpretGAN is shown beside (Zheng et al. Figs. 3, 5).

The paper compares its explanations with saliency maps, integrated gradients and
occlusion computed with captum (Appendix C); these are the same captum methods, reduced
to one heat map per image. Saliency comes from :mod:`advinterp.explainers.saliency`
(captum ``Saliency``), the other two from captum directly.
"""

from __future__ import annotations

import torch
from captum.attr import IntegratedGradients, Occlusion
from torch import nn

from advinterp.explainers.saliency import saliency
from advinterp.models.frozen import frozen

BASELINES: tuple[str, ...] = ("saliency", "integrated_gradients", "occlusion")


def baseline_maps(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    ig_steps: int = 32,
    occlusion_window: int = 8,
    occlusion_stride: int = 4,
    occlusion_fill: float = 0.5,
) -> dict[str, torch.Tensor]:
    """Saliency (max |gradient| over channels), integrated gradients (|attribution| summed
    over channels, black baseline) and occlusion (score drop, grey square) for ``target``.

    The model is evaluated in eval mode with frozen parameters; both are restored.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; target: (N,) int64.
        returns: name -> (N, H, W) float32; saliency and IG >= 0, occlusion signed.
    """
    x = x.detach()
    target = target.to(x.device)
    maps = {"saliency": saliency(model, x, target).abs().amax(1)}
    with frozen(model):
        ig = IntegratedGradients(model).attribute(
            x.clone(),
            baselines=torch.zeros_like(x),
            target=target,
            n_steps=ig_steps,
            internal_batch_size=max(ig_steps, 1) * 2,
        )
        occ = Occlusion(model).attribute(
            x.clone(),
            sliding_window_shapes=(x.shape[1], occlusion_window, occlusion_window),
            strides=(x.shape[1], occlusion_stride, occlusion_stride),
            target=target,
            baselines=occlusion_fill,
            perturbations_per_eval=64,
        )
    maps["integrated_gradients"] = ig.detach().abs().sum(1)
    maps["occlusion"] = occ.detach().sum(1)
    return maps
