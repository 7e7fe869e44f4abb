"""Attack to explain: distribution-level perturbations (Jalwana et al., CVPR 2020).

A perturbation ``p`` with ``||p||_2 <= η`` is grown until a whole distribution of images
plus ``p`` is classified as the target (Eqs. 2-3): the accumulated signal shows what the
classifier takes the target class to look like.

* :func:`estimate_perturbation` is Algorithm 1 line by line: a seed ``d`` plus ``b - 1``
  samples drawn from ``D̄`` each iteration (lines 3-4), the seed/distribution gradient
  fusion with the ratio ξ (lines 6-7), Adam-style moments α, β (lines 8-10), the choice
  between ``+ρ`` and ``-ρ`` by the expected target probability over ``D̄`` (lines
  11-19), projection onto the l2 ball of radius η (line 20) and the stopping value ℘ on
  the clipped perturbed mini-batch (lines 21-22).
* :func:`refine_perturbation` is Algorithm 2: the channel-mean activation of the
  convolutional base for ``p``, an Otsu threshold, ``λ`` on the salient cells, bicubic
  upsampling and clipping.
* :func:`attack_to_explain` alternates them as in Sec. 5.1: Algorithm 1 until ℘ >= γ (or
  an iteration cap), then a refinement every ``refine_every`` iterations of Algorithm 1
  up to ``refine_until`` iterations in all.

Reading of the algorithm where the text leaves a choice (each one a documented param):

* ``J`` is the cross-entropy of the target (Eq. 4 names it so); line 16 adds ``ρ`` built
  from its gradient, which *lowers* the target probability, so the sign test of lines
  11-19 picks ``-ρ`` whenever that is better: the sign test is what makes it descend.
* Line 4 writes ``d <- Clip(d ⊖ p_t)`` while line 1 keeps the original as ``d̄``, so the
  seed used for gradients accumulates the perturbations (``accumulate_seed=True``, as
  written); ``False`` perturbs the original seed afresh each iteration.
* Line 16 adds ``ρ`` unscaled and lines 11-12 probe with ``ρ / ||ρ||_inf`` (at most one
  unit per pixel). Both are in the units of the paper's images: for [0, 255] pixels one
  unit is one intensity level, 1/255 of our [0, 1] range. ``step_size`` is that unit
  (default 1/255): it scales ρ on lines 11-12 and 16-18. With ``step_size=1`` (the
  text read in [0, 1] units) ρ's entries of order one dwarf η, the projection makes
  ``p`` nearly ``η ρ / ||ρ||`` every iteration and nothing accumulates.
* Lines 11-12 perturb ``D̄`` without clipping; we clip to [0, 1] like every other image
  fed to the model (the pixel-space contract), and line 21 applies ``p_t`` to the raw
  mini-batch drawn on line 3 (not to the already perturbed one of line 4).
* Algorithm 2 feeds ``p`` to the convolutional base: a perturbation is a difference of
  images, so it is normalised by the model's std only (its mean cancels); "clipping to
  the valid dynamic range" is clipping to [-1, 1], the range of a difference of [0, 1]
  images. A refinement is always followed by Algorithm 1 iterations, whose projection
  brings ``||p||_2`` back to at most η.
* With Eq. 4's penalty (inpainting) the sign test compares the loss being minimised,
  the mean cross-entropy over ``D̄`` plus the penalty, instead of the target
  probability: the probability alone prefers the sign that grows ``p`` outside the mask
  F (the penalty's gradient there points the other way), which undoes Eq. 4.

Hand-written: no library implements this attack.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from skimage.filters import threshold_otsu

from advinterp.models.classifier import ImageClassifier
from advinterp.models.frozen import frozen

Penalty = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class A2EParams:
    """Hyper-parameters of Algorithms 1-2 (paper values in brackets).

    Attributes:
        eta: l2 radius η of the perturbation in [0, 1] pixel units of the attacked images
            [10 at 224 px; :func:`at_image_size` rescales a budget stated at 224 px].
        batch_size: mini-batch size b: the seed plus ``b - 1`` distribution samples [32].
        gamma: stop Algorithm 1 once the expected target probability ℘ >= γ [0.8].
        max_iterations: cap on the first run of Algorithm 1 (the paper has none).
        refine_every: Algorithm 1 iterations between refinements [50]; 0 disables
            Algorithm 2.
        refine_until: total iterations of the alternation [300].
        lam: λ, the gain of the salient region in Algorithm 2 [5].
        alpha, beta: moment decay rates [0.9, 0.999].
        step_size: scale of ρ on lines 16/18 [1, as written].
        accumulate_seed: line 4 as written (the seed accumulates ``p_t``) [True].
        eval_batch_size: images per forward pass when only probabilities are needed.
    """

    eta: float
    batch_size: int
    gamma: float
    max_iterations: int
    refine_every: int = 50
    refine_until: int = 300
    lam: float = 5.0
    alpha: float = 0.9
    beta: float = 0.999
    step_size: float = 1.0
    accumulate_seed: bool = True
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        if self.eta <= 0 or self.batch_size < 2 or not 0.0 <= self.gamma <= 1.0:
            raise ValueError("need eta > 0, batch_size >= 2 and 0 <= gamma <= 1")
        if self.max_iterations < 1 or self.refine_every < 0 or self.refine_until < 0:
            raise ValueError("need max_iterations >= 1, refine_every >= 0, refine_until >= 0")


def eta_at_size(eta: float, image_shape: tuple[int, int], reference_size: int | None) -> float:
    """The l2 radius for ``image_shape`` of a budget ``eta`` stated at a square
    ``reference_size`` image (the paper's 224 px): the same rms per pixel value.

    ``||p||_2 = rms * sqrt(3 H W)``, so equal rms means η scales with ``sqrt(H W)`` over
    ``reference_size`` (``image_size / reference_size`` for a square image): the paper's
    η = 10 at 224 px is 2.86 at 64 px, not 10 (which would be a 3.5x larger rms).
    ``reference_size=None``: ``eta`` is already stated at this image size.
    """
    if reference_size is None:
        return float(eta)
    if reference_size < 1 or min(image_shape) < 1:
        raise ValueError(f"need positive sizes, got {image_shape} and {reference_size}")
    h, w = image_shape
    return float(eta) * math.sqrt(h * w) / reference_size


def at_image_size(
    params: A2EParams, image_shape: tuple[int, int], reference_size: int | None
) -> A2EParams:
    """``params`` with η (stated at ``reference_size``) rescaled by :func:`eta_at_size`."""
    return replace(params, eta=eta_at_size(params.eta, image_shape, reference_size))


@dataclass(frozen=True)
class Estimate:
    """One run of Algorithm 1.

    Shape:
        perturbation: (3, H, W) float32, ``||p||_2 <= η``.
        history: ℘ after each iteration (line 22), in [0, 1].
        signs: +1 / -1, the direction chosen on lines 15-18 each iteration.
        norms: ``||p_t||_2`` after the projection of line 20, each iteration.
    """

    perturbation: torch.Tensor
    history: list[float]
    signs: list[int]
    norms: list[float]

    @property
    def iterations(self) -> int:
        return len(self.history)


@dataclass(frozen=True)
class A2EResult:
    """The alternation of Algorithms 1 and 2 (Sec. 5.1).

    Shape:
        perturbation: (3, H, W) float32, ``||p||_2 <= η``.
        history: (T,) float64, ℘ per Algorithm 1 iteration, T = ``iterations``.
        norms: (T,) float64, ``||p_t||_2`` per iteration.
        first_stop: iterations of the first Algorithm 1 run (until ℘ >= γ or the cap).
    """

    perturbation: torch.Tensor
    history: np.ndarray
    norms: np.ndarray
    first_stop: int
    refinements: int

    @property
    def iterations(self) -> int:
        return len(self.history)

    @property
    def target_probability(self) -> float:
        return float(self.history[-1]) if len(self.history) else 0.0

    def applied_to(self, seed: torch.Tensor) -> torch.Tensor:
        """The image ``Clip(seed + p)`` (Sec. 5.2's generated image).

        Shape:
            seed: (3, H, W) float32 in [0, 1]; returns (3, H, W) in [0, 1].
        """
        return (seed + self.perturbation).clamp(0.0, 1.0)


@torch.no_grad()
def target_probability(
    model: ImageClassifier, images: torch.Tensor, target: int, batch_size: int = 256
) -> torch.Tensor:
    """``P(K(I) -> target)`` for each image (the model must already be in eval mode).

    Shape:
        images: (N, 3, H, W) float32 in [0, 1]; returns (N,) float32 in [0, 1].
    """
    out = [
        F.softmax(model(images[s : s + batch_size]), dim=1)[:, target]
        for s in range(0, len(images), batch_size)
    ]
    return torch.cat(out) if out else images.new_zeros(0)


@torch.no_grad()
def _cross_entropy(
    model: ImageClassifier, images: torch.Tensor, target: int, batch_size: int
) -> torch.Tensor:
    """J(I, target) for each image. Shape: (N,) float32."""
    out = []
    for s in range(0, len(images), batch_size):
        logits = model(images[s : s + batch_size])
        labels = torch.full((len(logits),), target, dtype=torch.long, device=logits.device)
        out.append(F.cross_entropy(logits, labels, reduction="none"))
    return torch.cat(out)


def _input_gradients(model: ImageClassifier, x: torch.Tensor, target: int) -> torch.Tensor:
    """∇_x J(x, target) per image, J the target cross-entropy (images are independent)."""
    x = x.detach().requires_grad_(True)
    labels = torch.full((len(x),), target, dtype=torch.long, device=x.device)
    loss = F.cross_entropy(model(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def _project_l2(p: torch.Tensor, eta: float) -> torch.Tensor:
    """Line 20: ``p ⊙ min(1, η / ||p||_2)``."""
    norm = float(p.norm())
    return p * min(1.0, eta / norm) if norm > 0 else p


def estimate_perturbation(
    model: ImageClassifier,
    seed: torch.Tensor,
    samples: torch.Tensor,
    target: int,
    params: A2EParams,
    generator: torch.Generator,
    *,
    init: torch.Tensor | None = None,
    iterations: int | None = None,
    penalty: Penalty | None = None,
) -> Estimate:
    """Algorithm 1: perturbation estimation (Eq. 3).

    Args:
        model: the classifier K; left in the state it was found in.
        seed: the seed d.
        samples: the raw distribution samples D̄ (the target class left out by the caller
            when the perturbation should explain the model alone, Sec. 5.1).
        init: starting perturbation ``p_0`` (zero on the first run; the refined
            perturbation when Algorithm 1 resumes after Algorithm 2).
        iterations: run exactly this many iterations and ignore γ (the fixed
            50-iteration stretches between refinements); ``None`` runs until ℘ >= γ or
            ``params.max_iterations``.
        penalty: an extra loss term of ``p`` added to J for every sample (Eq. 4's
            inpainting term); its gradient is added to each sample's gradient.
        generator: draws the mini-batches (line 3).

    Shape:
        seed: (3, H, W) float32 in [0, 1]; samples: (n, 3, H, W) float32 in [0, 1].
        init: (3, H, W) float32 or None.
    """
    device = seed.device
    p = torch.zeros_like(seed) if init is None else init.detach().clone().to(device)
    mu = torch.zeros_like(seed)
    sigma = torch.zeros_like(seed)
    alpha, beta = params.alpha, params.beta
    d_bar = seed.detach().clone()
    d = d_bar.clone()
    n = len(samples)
    k = min(params.batch_size - 1, n)
    history: list[float] = []
    signs: list[int] = []
    norms: list[float] = []
    t = 0
    wp = 0.0
    with frozen(model):
        while True:
            if iterations is not None:
                if t >= iterations:
                    break
            elif wp >= params.gamma or t >= params.max_iterations:
                break
            # lines 3-4: a fresh mini-batch; perturbed and clipped copies
            pick = torch.randperm(n, generator=generator)[:k].to(device)
            raw = samples[pick]
            batch = (raw + p).clamp(0.0, 1.0)
            d = ((d if params.accumulate_seed else d_bar) + p).clamp(0.0, 1.0)
            t += 1
            # lines 6-7: seed and distribution gradients fused with the ratio ξ
            grads = _input_gradients(model, torch.cat([d[None], batch]), target)
            if penalty is not None:
                q = p.detach().clone().requires_grad_(True)
                (g_pen,) = torch.autograd.grad(penalty(q), q)
                grads = grads + g_pen[None]
            g_seed, g_dist = grads[0], grads[1:]
            dist_norm = float(g_dist.flatten(1).norm(dim=1).mean()) if len(g_dist) else 0.0
            xi = float(g_seed.norm()) / dist_norm if dist_norm > 0 else 0.0
            g = 0.5 * g_seed + (0.5 * xi * g_dist.mean(0) if len(g_dist) else 0.0)
            # lines 8-10: moments and the bias-corrected update signal ρ
            mu = alpha * mu + (1 - alpha) * g
            sigma = beta * sigma + (1 - beta) * g * g
            denom = sigma.sqrt() * (1 - alpha**t)
            rho = torch.where(denom > 0, mu * math.sqrt(1 - beta**t) / denom.clamp_min(1e-30), 0.0)
            # lines 11-19: keep the direction that raises the expected target probability
            peak = float(rho.abs().max())
            unit = params.step_size * (rho / peak if peak > 0 else rho)
            probe = torch.cat([(samples + p + unit).clamp(0, 1), (samples + p - unit).clamp(0, 1)])
            if penalty is None:
                score = target_probability(model, probe, target, params.eval_batch_size)
                plus, minus = float(score[:n].mean()), float(score[n:].mean())
            else:  # Eq. 4: compare the loss minimised (negated: higher is better)
                ce = _cross_entropy(model, probe, target, params.eval_batch_size)
                with torch.no_grad():
                    plus = -float(ce[:n].mean() + penalty(p + unit))
                    minus = -float(ce[n:].mean() + penalty(p - unit))
            sign = 1 if plus >= minus else -1
            p = p + sign * params.step_size * rho
            p = _project_l2(p, params.eta)  # line 20
            # lines 21-22: ℘ on the original seed and this iteration's raw samples
            check = (torch.cat([d_bar[None], raw]) + p).clamp(0.0, 1.0)
            wp = float(target_probability(model, check, target, params.eval_batch_size).mean())
            history.append(wp)
            signs.append(sign)
            norms.append(float(p.norm()))
    return Estimate(p.detach(), history, signs, norms)


def conv_base_activation(model: ImageClassifier, x: torch.Tensor) -> torch.Tensor:
    """Output Ω of the convolutional base K̃: the last spatial (h*w > 1) feature map.

    Found with forward hooks on ``model.body`` (removed on exit), so it works for any
    torchvision-style body: ``layer4`` of a ResNet, ``features`` of a VGG.

    Shape:
        x: (N, 3, H, W) float32 (already in the model's pixel space);
        returns (N, C, h, w) float32.
    """
    captured: dict[str, torch.Tensor] = {}

    def hook(_module: torch.nn.Module, _inputs: object, out: object) -> None:
        if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-2] * out.shape[-1] > 1:
            captured["omega"] = out.detach().clone()

    handles = [m.register_forward_hook(hook) for m in model.body.modules()]
    try:
        with frozen(model), torch.no_grad():
            model.features(x)
    finally:
        for h in handles:
            h.remove()
    if "omega" not in captured:
        raise ValueError(f"{model.arch}: no spatial feature map found in the model's body")
    return captured["omega"]


def refinement_mask(activation: np.ndarray, size: tuple[int, int], lam: float) -> torch.Tensor:
    """Algorithm 2, lines 4-6: Otsu threshold τ, ``λ`` where ``a > τ`` else 0, bicubic upsampling.

    A constant map has no salient region: the mask is then 1 everywhere (no change).

    Shape:
        activation: (h, w) float, the channel-mean signal a; returns (H, W) float32 f.
    """
    a = np.asarray(activation, dtype=np.float64)
    if np.ptp(a) == 0:
        return torch.ones(size, dtype=torch.float32)
    tau = threshold_otsu(a)
    binary = torch.as_tensor(np.where(a > tau, lam, 0.0), dtype=torch.float32)
    return F.interpolate(binary[None, None], size=size, mode="bicubic", align_corners=False)[0, 0]


def refine_perturbation(model: ImageClassifier, p: torch.Tensor, lam: float = 5.0) -> torch.Tensor:
    """Algorithm 2: perturbation refinement.

    Shape:
        p: (3, H, W) float32; returns (3, H, W) float32 in [-1, 1].
    """
    omega = conv_base_activation(model, (p + model.mean[0])[None])  # Ω = K̃(p), line 2
    a = omega[0].mean(0).cpu().numpy()  # line 3
    f = refinement_mask(a, (p.shape[-2], p.shape[-1]), lam).to(p.device)  # lines 4-6
    return (p * f).clamp(-1.0, 1.0)  # line 7


def attack_to_explain(
    model: ImageClassifier,
    seed: torch.Tensor,
    samples: torch.Tensor,
    target: int,
    params: A2EParams,
    generator: torch.Generator,
    *,
    penalty: Penalty | None = None,
    refine: bool = True,
) -> A2EResult:
    """Algorithm 1 until ℘ >= γ, then Algorithm 2 every ``refine_every`` iterations (Sec. 5.1).

    Args:
        refine: False runs Algorithm 1 alone (the paper's holistic generation and
            inpainting, Sec. 5.2).

    Shape:
        seed: (3, H, W) float32 in [0, 1]; samples: (n, 3, H, W) float32 in [0, 1].
    """
    first = estimate_perturbation(model, seed, samples, target, params, generator, penalty=penalty)
    p, history, norms = first.perturbation, list(first.history), list(first.norms)
    refinements = 0
    if refine and params.refine_every > 0:
        while len(history) < params.refine_until:
            p = refine_perturbation(model, p, params.lam)
            refinements += 1
            steps = min(params.refine_every, params.refine_until - len(history))
            more = estimate_perturbation(
                model,
                seed,
                samples,
                target,
                params,
                generator,
                init=p,
                iterations=steps,
                penalty=penalty,
            )
            p = more.perturbation
            history += more.history
            norms += more.norms
    return A2EResult(
        p,
        np.asarray(history, dtype=np.float64),
        np.asarray(norms, dtype=np.float64),
        first.iterations,
        refinements,
    )


def visualise_perturbation(p: torch.Tensor) -> torch.Tensor:
    """Map a perturbation to [0, 1] for display: ``0.5 + p / (2 max|p|)`` (zero is grey).

    Shape:
        p: (..., 3, H, W) float32; returns the same shape in [0, 1], per perturbation.
    """
    flat = p.flatten(-3)
    peak = flat.abs().amax(-1).clamp_min(1e-12)[..., None, None, None]
    return 0.5 + p / (2 * peak)


def mean_colour(images: torch.Tensor) -> torch.Tensor:
    """Mean pixel value per channel over a set of images (the Fig. 4 patch colour).

    Shape:
        images: (N, 3, H, W) float32 in [0, 1]; returns (3,) float32.
    """
    return images.mean(dim=(0, 2, 3))


def with_patch(
    images: torch.Tensor, box: tuple[int, int, int, int], colour: torch.Tensor
) -> torch.Tensor:
    """Replace the region ``box`` = (top, left, height, width) of every image by ``colour``.

    Region-specific semantics (Sec. 5.1, Fig. 4): a uniform patch in every sample makes
    the gradients of that region agree across the distribution.

    Shape:
        images: (N, 3, H, W) or (3, H, W) float32 in [0, 1]; colour: (3,); same shape out.
    """
    top, left, h, w = box
    out = images.clone()
    out[..., top : top + h, left : left + w] = colour.view(3, 1, 1).to(out)
    return out


def patch_box(size: int, frac: float, pos: tuple[float, float]) -> tuple[int, int, int, int]:
    """The square (top, left, side, side) of side ``frac * size`` at ``pos`` (fractions of
    ``size``), kept inside a ``size`` x ``size`` image (the Fig. 4 patches)."""
    side = max(1, round(frac * size))
    top = min(round(pos[0] * size), size - side)
    left = min(round(pos[1] * size), size - side)
    return top, left, side, side


def energy_near(p: torch.Tensor, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """Share of ``||p||²`` inside ``box`` grown by half its side, and that area's share.

    Measures whether a region-specific perturbation (Fig. 4) concentrates near its patch:
    a perturbation spread evenly has an energy share equal to the area share.

    Shape:
        p: (3, H, W) float32; box: (top, left, height, width) in pixels.
    """
    top, left, h, w = box
    H, W = p.shape[-2:]
    y0, y1 = max(0, top - h // 2), min(H, top + h + h // 2)
    x0, x1 = max(0, left - w // 2), min(W, left + w + w // 2)
    e = p.pow(2).sum(0)
    return float(e[y0:y1, x0:x1].sum() / e.sum().clamp_min(1e-30)), (y1 - y0) * (x1 - x0) / (H * W)
