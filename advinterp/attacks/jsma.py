"""JSMA: the Jacobian-based saliency map attack (Papernot et al., 2016), L0.

Papernot et al. Algorithm 3 as torchattacks' ``JSMA`` implements it: at each iteration
take the forward derivatives of the target logit, α_i = ∂Z_t/∂x_i, and of the other
logits, β_i = Σ_{j≠t} ∂Z_j/∂x_i; pick the pair of features (p, q) in the search domain
maximising (α_p + α_q)·|β_p + β_q| subject to α_p + α_q > 0 and β_p + β_q < 0 (their
Eq. 10, "increasing" for θ > 0); add θ to both, clip to [0, 1], drop them from the
domain; stop when the target class is reached, after ``ceil(γ·n/2)`` iterations or when
the domain is empty.

Written here instead of calling torchattacks' ``JSMA`` because that implementation does
not scale past MNIST/CIFAR sizes: it forms the full n×n pair matrices (n = 12,288 for a
64×64×3 image: about 0.6 GB per float matrix, several at once), runs one backward pass
per class per iteration and attacks one image at a time. ART's ``SaliencyMapMethod``
avoids the n×n matrices but ignores β and took minutes for 16 images here. This version
computes the same two derivatives with two backward passes for a whole batch and, when
``candidates`` is set, searches pairs among the ``candidates`` features with the largest
α_i - β_i only. With ``candidates=None`` it reproduces torchattacks' ``JSMA`` choice by
choice (the tests check that on a small model).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from advinterp.models.frozen import frozen


def _saliency_pairs(
    alpha: torch.Tensor,
    beta: torch.Tensor,
    domain: torch.Tensor,
    increasing: bool,
    candidates: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The best feature pair per image, following torchattacks' ``saliency_map``.

    Shape:
        alpha, beta: (B, n) float; domain: (B, n) bool -> p, q: (B,) int64 feature indices.
    """
    out_of_domain = (~domain).to(alpha.dtype)
    coef = 2.0 * out_of_domain if increasing else -2.0 * out_of_domain
    # Out-of-domain features are pushed far from the admissible sign (as torchattacks).
    a = alpha - coef * alpha.abs().amax(1, keepdim=True)
    b = beta + coef * beta.abs().amax(1, keepdim=True)
    n = alpha.shape[1]
    if candidates is not None and candidates < n:
        score = a - b if increasing else b - a
        idx = score.topk(candidates, dim=1).indices.sort(1).values
        a, b = a.gather(1, idx), b.gather(1, idx)
    else:
        idx = None
    k = a.shape[1]
    pair_a = a.unsqueeze(1) + a.unsqueeze(2)  # (B, k, k): [q, p] = a_p + a_q
    pair_b = b.unsqueeze(1) + b.unsqueeze(2)
    admissible = (pair_a > 0) & (pair_b < 0) if increasing else (pair_a < 0) & (pair_b > 0)
    admissible &= ~torch.eye(k, dtype=torch.bool, device=a.device)
    saliency = pair_a * pair_b.abs() * admissible.to(a.dtype)
    best = saliency.flatten(1).argmax(1)
    p, q = best // k, best % k
    if idx is not None:
        p, q = idx.gather(1, p[:, None])[:, 0], idx.gather(1, q[:, None])[:, 0]
    return p, q


def jsma(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    theta: float = 1.0,
    gamma: float = 0.1,
    candidates: int | None = 256,
) -> torch.Tensor:
    """Targeted JSMA adversarial examples.

    Args:
        model: maps images in [0, 1] to logits; frozen during the attack, then restored.
        targets: class to reach per image.
        theta: change added to a chosen feature (> 0 increases, < 0 decreases).
        gamma: largest fraction of features that may be changed (two per iteration).
        candidates: features per image among which pairs are searched (None: all, exact
            torchattacks behaviour, O(n²) memory).

    Shape:
        x: (N, C, H, W) float32 in [0, 1]; targets: (N,) int64.
        returns: (N, C, H, W) float32 in [0, 1], differing from x in at most
        ``2·ceil(gamma·C·H·W/2)`` features.
    """
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if theta == 0:
        raise ValueError("theta must be non-zero")
    increasing = theta > 0
    x_adv = x.detach().clone().flatten(1)
    shape = x.shape
    n = x_adv.shape[1]
    t = targets.to(x.device).long()
    domain = x_adv < 0.99 if increasing else x_adv > 0.01
    max_iters = math.ceil(n * gamma / 2.0)
    with frozen(model), torch.enable_grad():
        with torch.no_grad():
            pred = model(x_adv.view(shape)).argmax(1)
        for _ in range(max_iters):
            active = (pred != t) & domain.any(1)
            if not bool(active.any()):
                break
            rows = active.nonzero()[:, 0]
            xa = x_adv[rows].clone().requires_grad_(True)
            logits = model(xa.view(-1, *shape[1:]))
            (g_target,) = torch.autograd.grad(
                logits.gather(1, t[rows, None]).sum(), xa, retain_graph=True
            )
            (g_all,) = torch.autograd.grad(logits.sum(), xa)
            p, q = _saliency_pairs(g_target, g_all - g_target, domain[rows], increasing, candidates)
            step = torch.zeros_like(xa)
            step.scatter_add_(1, p[:, None], torch.full_like(p[:, None], theta, dtype=xa.dtype))
            step.scatter_add_(1, q[:, None], torch.full_like(q[:, None], theta, dtype=xa.dtype))
            x_adv[rows] = (xa.detach() + step).clamp(0.0, 1.0)
            domain[rows, p] = False
            domain[rows, q] = False
            with torch.no_grad():
                pred[rows] = model(x_adv[rows].view(-1, *shape[1:])).argmax(1)
    return x_adv.view(shape).detach()
