"""Latent Attention Network (LAN) attention masks for a trained classifier.

Grimm et al., "Latent Attention Networks" (arXiv:1706.00536), as used by Nguyen et al.,
"Where Classification Fails, Interpretation Rises" (the attention model g of their Fig. 2).

A LAN g maps an image to a mask of the same shape. Grimm et al. write the mask A(x) as
the *corruption* degree (1 = replaceable by noise); Nguyen et al. show masks of the
*important* pixels. Here ``g(x) = m = 1 - A(x)`` is the keep/importance mask, so
Grimm's Eq. 2 and 3 read

    x~ = m * x + (1 - m) * eta,        eta ~ H                          (Eq. 2)
    L_LAN(x) = E_eta[ L_F(F(x~), F(x)) ] + beta * mean(m)               (Eq. 3)

(``-beta * mean(A) = beta * mean(m) - beta``: the same objective up to a constant). F is
the frozen image classifier f1, L_F its training loss (cross-entropy) against its own
decision on the clean input (or the KL divergence to its clean output distribution),
H a fixed noise distribution: "bootstrap" (Grimm's choice for images: pixels of another
training image), "uniform" on [0, 1] or a constant grey. Following both papers g is a
small fully connected network (Nguyen: "a 3-layer Fully Connected Network").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from advinterp.models.checkpoint import load_from_state
from advinterp.models.frozen import frozen
from advinterp.progress import track

log = logging.getLogger(__name__)

Noise = Literal["bootstrap", "uniform", "constant"]
OutputLoss = Literal["cross_entropy", "kl"]
LAN_FORMAT = "advinterp-lan/1"


class LatentAttentionNet(nn.Module):
    """g: fully connected LAN producing a per-component keep mask in [0, 1].

    Args:
        input_shape: (channels, height, width) of the images.
        hidden: widths of the hidden layers (leaky-ReLU, as Grimm et al.).

    Shape:
        x: (N, C, H, W) float32 in [0, 1] -> mask (N, C, H, W) float32 in [0, 1]
        (1 = important/kept, 0 = replaceable by noise).
    """

    def __init__(self, input_shape: Sequence[int], hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.hidden = tuple(int(h) for h in hidden)
        d = int(np.prod(self.input_shape))
        layers: list[nn.Module] = []
        width = d
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, d))
        self.net = nn.Sequential(*layers)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid mask scores, (N, C, H, W)."""
        return self.net(x.flatten(1)).view(-1, *self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class ConvAttentionNet(nn.Module):
    """g: small fully convolutional LAN (context at 1/4 resolution, mask at 1/2, upsampled).

    Convolutions tie each mask value to the image content around it, so masks follow
    the object wherever it is (an alternative to the paper's fully connected LAN).

    Args:
        input_shape: (channels, height, width).
        hidden: (width at 1/2 resolution, width at 1/4 resolution).

    Shape:
        x: (N, C, H, W) float32 in [0, 1] -> mask (N, C, H, W) float32 in [0, 1].
    """

    def __init__(self, input_shape: Sequence[int], hidden: Sequence[int] = (16, 32)):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.hidden = tuple(int(h) for h in hidden)
        if len(self.hidden) != 2:
            raise ValueError(f"the conv LAN takes two hidden widths, got {self.hidden}")
        c, w1, w2 = self.input_shape[0], self.hidden[0], self.hidden[1]
        act = nn.LeakyReLU(0.2)
        self.stem = nn.Sequential(nn.Conv2d(c, w1, 3, stride=2, padding=1), act)
        self.context = nn.Sequential(
            nn.Conv2d(w1, w2, 3, stride=2, padding=1),
            act,
            nn.Conv2d(w2, w2, 3, padding=2, dilation=2),
            act,
            nn.Conv2d(w2, w2, 3, padding=4, dilation=4),
            act,
        )
        self.fuse = nn.Sequential(nn.Conv2d(w1 + w2, w1, 3, padding=1), act, nn.Conv2d(w1, c, 1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid mask scores, (N, C, H, W)."""
        f = self.stem(x)
        h = F.interpolate(self.context(f), size=f.shape[-2:], mode="bilinear", align_corners=False)
        z = self.fuse(torch.cat([f, h], 1))
        return F.interpolate(z, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


LanNet = LatentAttentionNet | ConvAttentionNet
"""A LAN g of either architecture."""
LAN_ARCHS: dict[str, type[LanNet]] = {"conv": ConvAttentionNet, "fc": LatentAttentionNet}
LanArch = Literal["conv", "fc"]


def build_lan(arch: LanArch, input_shape: Sequence[int], hidden: Sequence[int]) -> LanNet:
    """A fresh LAN by name: "fc" (Grimm et al., Nguyen et al.) or "conv"."""
    if arch not in LAN_ARCHS:
        raise ValueError(f"unknown LAN arch {arch!r}; use one of {sorted(LAN_ARCHS)}")
    return LAN_ARCHS[arch](input_shape, hidden)


def sample_noise(
    x: torch.Tensor, kind: Noise, generator: torch.Generator, constant: float = 0.5
) -> torch.Tensor:
    """Draw eta ~ H with the shape of ``x``.

    "bootstrap" replaces every image by another image of the same (randomly drawn)
    batch, a draw from the training set as in Grimm et al., without holding the set in
    memory; a batch of one falls back to uniform noise.

    Shape:
        x: (N, C, H, W) in [0, 1] -> eta (N, C, H, W) in [0, 1].
    """
    n = x.shape[0]
    if kind == "constant":
        return torch.full_like(x, constant)
    if kind == "bootstrap" and n > 1:
        shift = int(torch.randint(1, n, (1,), generator=generator))
        return x.roll(shift, dims=0)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
    return u.to(x.device)


def corrupt(x: torch.Tensor, mask: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """Grimm et al. Eq. 2 with a keep mask: ``m * x + (1 - m) * eta`` (all (N, C, H, W))."""
    return mask * x + (1.0 - mask) * eta


def lan_objective(
    classifier: nn.Module,
    mask: torch.Tensor,
    x: torch.Tensor,
    eta: torch.Tensor,
    beta: float,
    output_loss: OutputLoss = "cross_entropy",
    clean_logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One-sample estimate of Grimm et al. Eq. 3 for a batch, averaged over it.

    Args:
        classifier: F = f1, used as a fixed function (wrap the call in :func:`frozen`).
        mask: g(x), (N, C, H, W) in [0, 1].
        x, eta: images and noise, (N, C, H, W) in [0, 1].
        beta: trade-off weight of the keep penalty (> 0).
        clean_logits: F(x), (N, K); computed when not given.

    Returns:
        (objective, output term L_F, keep term mean(m)), each a scalar tensor.
    """
    if clean_logits is None:
        with torch.no_grad():
            clean_logits = classifier(x)
    out = classifier(corrupt(x, mask, eta))
    if output_loss == "cross_entropy":
        term = F.cross_entropy(out, clean_logits.argmax(1))
    else:
        term = F.kl_div(
            F.log_softmax(out, 1),
            F.log_softmax(clean_logits, 1),
            log_target=True,
            reduction="batchmean",
        )
    keep = mask.mean()
    return term + beta * keep, term, keep


def train_lan(
    lan: nn.Module,
    classifier: nn.Module,
    batches: Callable[[int], Iterable[tuple[Any, Any]]],
    *,
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    beta: float,
    noise: Noise,
    generator: torch.Generator,
    device: torch.device,
    output_loss: OutputLoss = "cross_entropy",
    constant: float = 0.5,
) -> list[dict[str, float]]:
    """Fit g by Adam on Eq. 3 with f1 frozen (eval, no parameter grads; restored after).

    Args:
        batches: ``epoch -> iterable of (images (B, C, H, W) in [0, 1], f1's clean
            logits (B, K) or None)`` over the training split; passing the clean logits
            (computed once) saves one forward pass of f1 per step.

    Returns:
        One record per epoch: mean objective, output term, keep term (mean mask).
    """
    optimizer = torch.optim.Adam(lan.parameters(), lr=lr)
    history = []
    with frozen(classifier):
        lan.train()
        for epoch in range(epochs):
            sums = np.zeros(3)
            seen = 0
            for xb, zb in track(
                batches(epoch), total=steps_per_epoch, desc=f"LAN epoch {epoch + 1}"
            ):
                x = torch.as_tensor(xb, device=device)
                z = None if zb is None else torch.as_tensor(zb, device=device)
                eta = sample_noise(x, noise, generator, constant)
                total, term, keep = lan_objective(
                    classifier, lan(x), x, eta, beta, output_loss, clean_logits=z
                )
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                optimizer.step()
                sums += np.array([total.item(), term.item(), keep.item()]) * len(x)
                seen += len(x)
            obj, term_mean, keep_mean = sums / max(seen, 1)
            history.append(
                {
                    "epoch": epoch + 1,
                    "objective": obj,
                    "output_loss": term_mean,
                    "mean_mask": keep_mean,
                }
            )
            log.info(
                "LAN epoch %d/%d: objective %.4f (output %.4f, mean mask %.3f)",
                epoch + 1,
                epochs,
                obj,
                term_mean,
                keep_mean,
            )
    lan.eval()
    return history


@torch.no_grad()
def attention_masks(
    lan: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int, device: torch.device
) -> np.ndarray:
    """m = g(x) for a stack of images, in eval mode (restored after).

    Shape:
        images: (N, C, H, W) float32 in [0, 1] -> masks (N, C, H, W) float32 in [0, 1].
    """
    was_training = lan.training
    lan.eval()
    try:
        out = [
            lan(torch.as_tensor(images[s : s + batch_size], device=device)).cpu()
            for s in range(0, len(images), batch_size)
        ]
    finally:
        lan.train(was_training)
    if not out:  # masks have the images' shape
        return np.zeros((0, *images.shape[1:]), np.float32)
    return torch.cat(out).numpy()


@torch.no_grad()
def corrupted_agreement(
    lan: nn.Module,
    classifier: nn.Module,
    images: np.ndarray,
    noise: Noise,
    generator: torch.Generator,
    batch_size: int,
    device: torch.device,
    constant: float = 0.5,
) -> float:
    """Fraction of images whose f1 decision survives corruption by their own mask (Eq. 2)."""
    agree = total = 0
    with frozen(classifier):
        for s in range(0, len(images), batch_size):
            x = torch.as_tensor(images[s : s + batch_size], device=device)
            x_t = corrupt(x, lan(x), sample_noise(x, noise, generator, constant))
            agree += int((classifier(x_t).argmax(1) == classifier(x).argmax(1)).sum())
            total += len(x)
    return agree / max(total, 1)


def lan_state(lan: LanNet, **metadata: Any) -> dict[str, Any]:
    """A weights_only-loadable checkpoint payload for g."""
    arch = next(k for k, v in LAN_ARCHS.items() if isinstance(lan, v))
    return {
        "format": LAN_FORMAT,
        "arch": arch,
        "input_shape": list(lan.input_shape),
        "hidden": list(lan.hidden),
        "state_dict": {k: v.detach().cpu() for k, v in lan.state_dict().items()},
        "metadata": metadata,
    }


def lan_from_state(obj: dict[str, Any]) -> LanNet:
    """Rebuild g from :func:`lan_state` output (raises ValueError on a foreign payload)."""
    if obj.get("format") != LAN_FORMAT:
        raise ValueError(f"not a LAN checkpoint (format {obj.get('format')!r})")
    lan = build_lan(obj["arch"], obj["input_shape"], obj["hidden"])
    lan.load_state_dict(obj["state_dict"])
    return lan.eval()


def load_lan(path: Path | str, device: torch.device) -> LanNet:
    """g from a :func:`lan_state` file, on ``device``, in eval mode.

    Raises:
        CheckpointError: missing, unreadable, or not a LAN checkpoint.
    """
    return load_from_state(path, device, lan_from_state)
