"""Image generation, inpainting and sketch manipulation with a robust classifier.

Jalwana et al. (CVPR 2020), Sec. 5.2, and the baseline they compare with (Santurkar et
al. 2019, "Image synthesis with a single (robust) classifier"):

* the distribution samples D̄ come from a class-conditional multivariate Gaussian
  ``N(μ_I, Σ_I)`` fitted to 4x-downsampled images of the target class, upsampled back
  (:func:`fit_class_gaussian`, :class:`ClassGaussian`);
* generation: a seed plus Algorithm 1 toward the target, no refinement (Sec. 5.2.1);
* inpainting: the corrupted image as seed, Eq. 4's penalty
  ``β ||p ⊙ (1 - F)||_2`` (β = 10) keeping the perturbation inside the mask F
  (:func:`inpainting_penalty`, Sec. 5.2.2);
* manipulation: a crude sketch as seed, with refinement (Sec. 5.2.3; :func:`crude_sketch`);
* the baseline: plain targeted PGD in l2 on the same robust model, same seed, same
  budget η (:func:`targeted_pgd_l2`), with the same penalty for inpainting (Santurkar et
  al. use ``λ ||(x - x') ⊙ (1 - m)||_2`` with λ = 10 there too).

The attack itself is :mod:`advinterp.attacks.attack_to_explain`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import label2rgb
from skimage.segmentation import slic

from advinterp.attacks.attack_to_explain import Penalty
from advinterp.models.classifier import ImageClassifier
from advinterp.models.frozen import frozen


@dataclass(frozen=True)
class ClassGaussian:
    """``N(μ, Σ)`` over downsampled images, ``Σ = A Aᵀ + ridge I`` with A low rank.

    With n images of dimension D >> n the sample covariance has rank < n; it is kept as
    its factor A (D, n), so sampling costs O(D n) and no (D, D) matrix is needed.

    Shape:
        mean: (D,) float32, D = 3 h w; factor: (D, n) float32; ``low_shape`` = (3, h, w).
    """

    mean: torch.Tensor
    factor: torch.Tensor
    ridge: float
    low_shape: tuple[int, int, int]

    def covariance(self) -> torch.Tensor:
        """Σ as a dense (D, D) float64 matrix (for checks; avoid at ImageNet scale)."""
        a = self.factor.double()
        return a @ a.T + self.ridge * torch.eye(a.shape[0], dtype=torch.float64)

    def sample_low(self, k: int, generator: torch.Generator) -> torch.Tensor:
        """k draws at the fitted resolution, unclipped. Shape: (k, D) float32."""
        # Hand-written: torch.distributions samplers take no Generator (not reproducible
        # per call), and the factor form is three lines.
        z = torch.randn(k, self.factor.shape[1], generator=generator)
        eps = torch.randn(k, self.factor.shape[0], generator=generator)
        return self.mean + z @ self.factor.T + math.sqrt(self.ridge) * eps

    def sample(self, k: int, generator: torch.Generator, size: tuple[int, int]) -> torch.Tensor:
        """k draws upsampled (bicubic) to ``size`` and clipped to [0, 1].

        Shape:
            returns (k, 3, H, W) float32 in [0, 1].
        """
        low = self.sample_low(k, generator).view(k, *self.low_shape)
        up = F.interpolate(low, size=size, mode="bicubic", align_corners=False)
        return up.clamp(0.0, 1.0)


def fit_class_gaussian(
    images: torch.Tensor, downsample: int = 4, ridge: float = 1e-4
) -> ClassGaussian:
    """Fit ``N(μ_I, Σ_I)`` to images of one class after ``downsample``-x area downsampling.

    ``Σ_I = E[(I_i - μ_I)ᵀ (I_i - μ_I)]`` as the paper writes it (the 1/n average), plus
    ``ridge`` on the diagonal so draws are not confined to the span of the images.

    Shape:
        images: (n, 3, H, W) float32 in [0, 1], n >= 2, H and W divisible by ``downsample``.
    """
    if len(images) < 2:
        raise ValueError("fitting a Gaussian needs at least two images")
    _, c, h, w = images.shape
    low = F.interpolate(images.float(), size=(h // downsample, w // downsample), mode="area")
    flat = low.flatten(1).double()
    mean = flat.mean(0)
    factor = (flat - mean).T / math.sqrt(len(flat))
    return ClassGaussian(
        mean=mean.float(),
        factor=factor.float(),
        ridge=float(ridge),
        low_shape=(c, h // downsample, w // downsample),
    )


def inpainting_penalty(mask: torch.Tensor, beta: float = 10.0) -> Penalty:
    """Eq. 4's term ``β ||δ ⊙ (1 - F)||_2``: the change δ outside the corrupt region F.

    Works on one perturbation (3, H, W) or a batch of changes (N, 3, H, W) (summed).

    Shape:
        mask: (H, W) or (1, H, W) float32 in {0, 1}, 1 inside the corrupt region.
    """
    keep = 1.0 - mask

    def penalty(delta: torch.Tensor) -> torch.Tensor:
        outside = (delta * keep.to(delta)).reshape(-1, math.prod(delta.shape[-3:]))
        # sqrt(x + tiny): the l2 norm with a zero (not NaN) gradient at δ = 0
        return beta * (outside.pow(2).sum(1) + 1e-20).sqrt().sum()

    return penalty


def targeted_pgd_l2(
    model: ImageClassifier,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    eps: float,
    steps: int,
    step_size: float | None = None,
    penalty: Penalty | None = None,
) -> torch.Tensor:
    """Santurkar et al.'s baseline: targeted l2 PGD, normalised-gradient steps.

    Minimises ``J(x', target) (+ penalty(x' - x))`` subject to ``||x' - x||_2 <= eps`` and
    ``x'`` in [0, 1], from ``x'`` = ``x`` (no random start, as in Santurkar et al.).
    Hand-written rather than torchattacks' ``PGDL2`` because inpainting needs the extra
    penalty term; without it the two agree (tests/explainers check this).

    Args:
        step_size: defaults to ``2.5 eps / steps`` (Madry et al.).

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; targets: (N,) int64; returns like x.
    """
    alpha = 2.5 * eps / steps if step_size is None else step_size
    x0 = x.detach()
    adv = x0.clone()
    with frozen(model):
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), targets, reduction="sum")
            if penalty is not None:
                loss = loss + penalty(adv - x0)
            (grad,) = torch.autograd.grad(loss, adv)
            norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            adv = adv.detach() - alpha * grad / norms
            delta = adv - x0
            scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
            adv = (x0 + delta * scale.view(-1, 1, 1, 1)).clamp(0.0, 1.0).detach()
    return adv


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> torch.Tensor:
    """Binary mask F: 1 inside ``box`` = (top, left, height, width). Shape: (H, W) float32."""
    mask = torch.zeros(size, dtype=torch.float32)
    top, left, h, w = box
    mask[top : top + h, left : left + w] = 1.0
    return mask


def corrupt(image: torch.Tensor, mask: torch.Tensor, fill: float = 0.5) -> torch.Tensor:
    """The corrupted seed: pixels inside the mask replaced by ``fill``.

    Shape:
        image: (..., 3, H, W) float32 in [0, 1]; mask: (H, W); returns like image.
    """
    return image * (1.0 - mask) + fill * mask


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean squared error over the pixels where ``mask`` is 1 (all channels).

    Shape:
        a, b: (..., 3, H, W); mask: (H, W) float32 in {0, 1}.
    """
    weight = mask.expand_as(a)
    return float(((a - b) ** 2 * weight).sum() / weight.sum().clamp_min(1.0))


def crude_sketch(
    image: torch.Tensor, n_segments: int = 8, compactness: float = 10.0
) -> torch.Tensor:
    """A crude flat-colour sketch of an image: SLIC superpixels filled with their mean colour.

    Stands in for the hand-drawn sketches of Fig. 8: a few uniform blobs with the rough
    layout and colours of an object, no texture or detail.

    Shape:
        image: (3, H, W) float32 in [0, 1]; returns (3, H, W) float32 in [0, 1].
    """
    hwc = image.permute(1, 2, 0).cpu().numpy().astype(np.float64)
    labels = slic(
        hwc, n_segments=n_segments, compactness=compactness, start_label=1, channel_axis=-1
    )
    flat = label2rgb(labels, hwc, kind="avg", bg_label=-1)
    return torch.as_tensor(flat, dtype=torch.float32).permute(2, 0, 1).clamp(0.0, 1.0)
