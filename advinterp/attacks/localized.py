"""Localized adversarial attacks: targeted BIM confined to an image region.

Göpfert et al. 2019, "Recovering Localized Adversarial Attacks", Sec. 2 and 4: each
chosen image is segmented with Felzenszwalb-Huttenlocher, its largest regions are
taken one at a time, and a targeted Basic Iterative Method (Kurakin et al.) is run
with the extra constraint C(x) of Eq. 1 that x' may differ from x only inside the
region. Attempts that do not reach the target or stop progressing within the step
budget are discarded (and counted). The region is then the ground truth for what an
explainer of f(x') should point at.

The masked, early-stopping loop is written here rather than reusing
:func:`advinterp.attacks.ifgsm.linf_iterate`: that loop runs a fixed step count on the
whole image, while this one masks every step, stops each sample on success and
detects stalls. It reuses that module's :func:`project_linf` and the model guard
:func:`advinterp.models.frozen.frozen`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage.segmentation import felzenszwalb
from torch import nn

from advinterp.attacks.ifgsm import project_linf
from advinterp.models.frozen import frozen

# Outcome codes of one attack attempt.
SUCCESS, FAILED, STALLED = 0, 1, 2
OUTCOMES = {SUCCESS: "success", FAILED: "failed", STALLED: "stalled"}


def segment_regions(image: np.ndarray, scale: float, sigma: float, min_size: int) -> np.ndarray:
    """Felzenszwalb-Huttenlocher segmentation (scikit-image) of one image.

    Shape:
        image: (3, H, W) float32 in [0, 1].
        returns: (H, W) int64 region labels 0..K-1.
    """
    hwc = np.ascontiguousarray(np.asarray(image, dtype=np.float64).transpose(1, 2, 0))
    return felzenszwalb(hwc, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1).astype(
        np.int64
    )


def largest_regions(
    segments: np.ndarray, max_regions: int, max_fraction: float = 1.0
) -> list[np.ndarray]:
    """Masks of the ``max_regions`` largest regions, largest first (ties: lower label).

    Regions covering more than ``max_fraction`` of the image (typically the background)
    are skipped: the paper attacks "a relatively small region" of each image.

    Shape:
        segments: (H, W) int labels; returns a list of (H, W) bool masks.
    """
    labels, sizes = np.unique(segments, return_counts=True)
    order = np.lexsort((labels, -sizes))
    limit = max_fraction * segments.size
    chosen = [labels[i] for i in order if sizes[i] <= limit][:max_regions]
    return [segments == label for label in chosen]


@dataclass(frozen=True)
class LocalizedResult:
    """Outcome of :func:`localized_bim` for a batch.

    Shape:
        adversarial: (N, 3, H, W) float32 in [0, 1]; equals the input outside each mask.
        outcome: (N,) int64 codes SUCCESS / FAILED / STALLED.
        steps: (N,) int64 gradient steps taken before stopping.
        target_prob: (N,) float32 softmax probability of the target at the end.
        pred: (N,) int64 prediction on ``adversarial``.
    """

    adversarial: torch.Tensor
    outcome: torch.Tensor
    steps: torch.Tensor
    target_prob: torch.Tensor
    pred: torch.Tensor


def localized_bim(
    model: nn.Module,
    x: torch.Tensor,
    masks: torch.Tensor,
    targets: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    max_steps: int,
    patience: int,
    min_improvement: float = 1e-3,
    confidence: float = 0.0,
) -> LocalizedResult:
    """Targeted BIM restricted to ``masks`` (Göpfert et al. Sec. 2, Eq. 1 with C(x)).

    Each step is ``x' <- Clip_{x,eps}[x' - α · m ⊙ sign(∇_x' CE(f(x'), t))]`` clipped to
    [0, 1], with m the region mask. A sample stops as soon as f predicts its target with
    a logit margin of at least ``confidence`` (success); it is given up as *stalled* when
    its target cross-entropy has not dropped by ``min_improvement`` for ``patience``
    steps, and as *failed* when ``max_steps`` run out.

    Args:
        model: maps images in [0, 1] to logits; left in the state it was found in.
        eps: L-inf budget inside the region (pixel units).
        step_size: α.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; masks: (N, H, W) or (N, 1, H, W) bool;
        targets: (N,) int64.
    """
    if eps < 0 or step_size <= 0 or max_steps < 0 or patience < 1:
        raise ValueError("need eps >= 0, step_size > 0, max_steps >= 0, patience >= 1")
    x = x.detach()
    n = x.shape[0]
    device = x.device
    m = masks.to(device=device, dtype=torch.bool).reshape(n, 1, *x.shape[-2:])
    mf = m.to(x.dtype)
    t = targets.to(device)
    adv = x.clone()
    outcome = torch.full((n,), FAILED, dtype=torch.int64)
    steps = torch.zeros(n, dtype=torch.int64)
    best = torch.full((n,), float("inf"))
    since = torch.zeros(n, dtype=torch.int64)
    active = torch.arange(n)
    with frozen(model), torch.enable_grad():
        for step in range(max_steps + 1):
            if active.numel() == 0:
                break
            xa = adv[active].requires_grad_(True)
            logits = model(xa)
            ta = t[active]
            loss = F.cross_entropy(logits, ta, reduction="none")
            done = _reached(logits.detach(), ta, confidence).cpu()
            lc = loss.detach().cpu()
            improved = lc < best[active] - min_improvement
            best[active] = torch.where(improved, lc, best[active])
            since[active] = torch.where(improved, 0, since[active] + 1)
            stalled = ~done & (since[active] >= patience)
            outcome[active[done]] = SUCCESS
            outcome[active[stalled]] = STALLED
            steps[active] = step
            keep = ~(done | stalled)
            if step == max_steps or not bool(keep.any()):
                break
            # Summed, not averaged: a sample's step must not depend on the batch.
            (grad,) = torch.autograd.grad(loss[keep.to(device)].sum(), xa)
            idx = active[keep]
            kd = keep.to(device)
            moved = xa.detach()[kd] - step_size * mf[idx] * grad[kd].sign()
            adv[idx] = project_linf(moved, x[idx], eps)
            active = idx
        with torch.no_grad():
            adv = torch.where(m, adv, x)  # outside the region: bit-identical to x
            logits = model(adv)
    prob = logits.softmax(1).gather(1, t[:, None])[:, 0]
    return LocalizedResult(
        adversarial=adv.detach(),
        outcome=outcome,
        steps=steps,
        target_prob=prob.float().cpu(),
        pred=logits.argmax(1).cpu(),
    )


def _reached(logits: torch.Tensor, targets: torch.Tensor, confidence: float) -> torch.Tensor:
    """f predicts the target, with a logit margin of at least ``confidence`` over the rest."""
    hit = logits.argmax(1) == targets
    if confidence <= 0:
        return hit
    tgt = logits.gather(1, targets[:, None])[:, 0]
    other = logits.scatter(1, targets[:, None], float("-inf")).amax(1)
    return hit & (tgt - other >= confidence)
