"""InterpretGAN (Zheng et al., Sec. 3): explain a layer's latent variable as an image.

For a classifier ``f = f_post ∘ f_pre`` and the latent variable ``l = f_pre(x)`` of
one layer, a compression network C shrinks ``l`` to a small code, a generator G turns
the code into an explanation ``x̂ = G(C(l))`` in image space, and a discriminator D
tells explanations from data. C and G are trained with the GAN objective plus the
interpretability term (Eqs. 2-4)::

    min_{C,G} max_D  V(D, G) - λ L_I(G)
    V(D, G) = E_x[log D(x)] + E_l[log(1 - D(G(C(l))))]                 (Eq. 2)
    L_I(G)  = E_{x̂ ~ G(l), y ~ f(x)}[log p_f(ŷ = y | x̂)]  (+ H(y))     (Eq. 3)

so explanations follow the data distribution (the GAN) and keep what the classifier
uses (L_I: f must give x̂ the class it gave x). Here ``y`` is f's top class on x, as
the issue states it (the Eq. 3 expectation over y ~ f(x) with a one-hot f). One
InterpretGAN per interpreted layer; the classifier is frozen (restored after).

Departures from the paper, for a minutes-long CPU run (all are arguments):
a DCGAN-style G (with progressive GAN's pixel norm) and D at a fixed resolution instead
of a progressive GAN, trained for a few epochs; the stage can warm-start each layer's G
and D from the next deeper layer's (:meth:`InterpretGAN.warm_start_from`); G draws
at ``gen_size`` (32 px on the embedded default) and the explanation is bilinearly
upsampled to the data's size (64 px), D looks at images average-pooled to
``gen_size``; the non-saturating generator loss replaces ``log(1 - D)``.
C follows Table 4: for a conv layer, 3x3 conv + average pooling blocks until the
side is at most 4, then a linear layer; for an FC layer, one linear layer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from advinterp.errors import CheckpointError
from advinterp.models.frozen import frozen
from advinterp.progress import track

log = logging.getLogger(__name__)

LayerFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]


class Compressor(nn.Module):
    """C: a layer's latent variable -> a ``code_dim`` code (Table 4).

    Shape:
        input: (N, *layer_shape); output: (N, code_dim).
    """

    def __init__(self, layer_shape: Sequence[int], code_dim: int, width: int):
        super().__init__()
        layers: list[nn.Module] = []
        if len(layer_shape) == 3:
            c, h, w = layer_shape
            k = 0
            while max(h, w) > 4:
                out = width * 2**k
                layers += [nn.Conv2d(c, out, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
                c, h, w, k = out, h // 2, w // 2, k + 1
            flat = c * h * w
        elif len(layer_shape) == 1:
            flat = layer_shape[0]
        else:
            raise ValueError(f"layer shape must be (C, H, W) or (D,), got {tuple(layer_shape)}")
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, code_dim))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent)


class PixelNorm(nn.Module):
    """Progressive GAN's pixelwise feature normalisation: each pixel's feature vector to
    unit RMS. Unlike batch norm it does not depend on the batch, so G behaves the same
    when it explains one image (eval) as in training.
    """

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * torch.rsqrt(h.pow(2).mean(1, keepdim=True) + 1e-8)


class Generator(nn.Module):
    """G: code -> image in [0, 1]: 4x4 seed, (upsample, 3x3 conv, LeakyReLU, pixel norm)
    to ``gen_size``, a 3x3 conv to the data's ``channels`` and a sigmoid.

    Shape:
        input: (N, code_dim); output: (N, channels, image_size, image_size) float32 in [0, 1].
    """

    def __init__(self, code_dim: int, width: int, gen_size: int, image_size: int, channels: int):
        super().__init__()
        scales = round(math.log2(gen_size / 4))
        if scales < 0 or 4 * 2**scales != gen_size:
            raise ValueError(f"gen_size must be 4 times a power of two, got {gen_size}")
        self.image_size = image_size
        top = width * 2**scales
        self.seed = nn.Sequential(nn.Linear(code_dim, top * 16), nn.LeakyReLU(0.2))
        self.top = top
        blocks: list[nn.Module] = []
        c = top
        for _ in range(scales):
            out = max(width, c // 2)
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c, out, 3, padding=1),
                nn.LeakyReLU(0.2),
                PixelNorm(),
            ]
            c = out
        blocks += [nn.Conv2d(c, channels, 3, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*blocks)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        img = self.net(PixelNorm()(self.seed(code).view(-1, self.top, 4, 4)))
        if img.shape[-1] != self.image_size:
            img = F.interpolate(img, size=self.image_size, mode="bilinear", align_corners=False)
            img = img.clamp(0.0, 1.0)
        return img


class Discriminator(nn.Module):
    """D: image -> real/fake logit; strided 4x4 convs on the image pooled to ``gen_size``.

    Shape:
        input: (N, channels, H, W) float32 in [0, 1]; output: (N,) logits.
    """

    def __init__(self, width: int, gen_size: int, channels: int):
        super().__init__()
        self.gen_size = gen_size
        layers: list[nn.Module] = []
        c, side, k = channels, gen_size, 0
        while side > 4:
            out = width * 2**k
            layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c, side, k = out, side // 2, k + 1
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(F.adaptive_avg_pool2d(x * 2 - 1, self.gen_size)).squeeze(1)


class InterpretGAN(nn.Module):
    """C, G and D for one layer; ``forward(l)`` is the explanation ``x̂ = G(C(l))``.

    Args:
        channels: the data's image channels (3 RGB, 1 grey), which G draws and D reads.

    Shape:
        l: (N, *layer_shape); returns (N, channels, image_size, image_size) float32 in [0, 1].
    """

    def __init__(
        self,
        layer: str,
        layer_shape: Sequence[int],
        image_size: int,
        *,
        channels: int,
        code_dim: int = 64,
        compress_width: int = 16,
        gen_width: int = 16,
        disc_width: int = 16,
        gen_size: int = 32,
    ):
        super().__init__()
        self.layer = layer
        self.config = {
            "layer": layer,
            "layer_shape": [int(s) for s in layer_shape],
            "image_size": int(image_size),
            "channels": int(channels),
            "code_dim": int(code_dim),
            "compress_width": int(compress_width),
            "gen_width": int(gen_width),
            "disc_width": int(disc_width),
            "gen_size": int(gen_size),
        }
        self.compressor = Compressor(layer_shape, code_dim, compress_width)
        self.generator = Generator(code_dim, gen_width, gen_size, image_size, channels)
        self.discriminator = Discriminator(disc_width, gen_size, channels)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.generator(self.compressor(latent))

    def warm_start_from(self, other: InterpretGAN) -> None:
        """Start G and D from another layer's trained ones (C stays fresh: it is
        layer-specific). The architectures of G and D do not depend on the layer."""
        self.generator.load_state_dict(other.generator.state_dict())
        self.discriminator.load_state_dict(other.discriminator.state_dict())


def interpretgan_from_config(config: dict[str, Any]) -> InterpretGAN:
    """Rebuild an (untrained) InterpretGAN from its ``config`` dict."""
    cfg = dict(config)
    # Checkpoints written before configs recorded the channel count are all RGB.
    cfg.setdefault("channels", 3)
    return InterpretGAN(cfg.pop("layer"), cfg.pop("layer_shape"), cfg.pop("image_size"), **cfg)


def interpretability_term(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_I of Eq. 3 without the constant H(y): mean log p_f(y | x̂).

    Shape:
        logits: (N, C) f(x̂); y: (N,) int64 f's class on x. Returns a scalar <= 0.
    """
    return -F.cross_entropy(logits, y)


@dataclass(frozen=True)
class GanSchedule:
    """Optimisation of one InterpretGAN (Adam for C+G and for D)."""

    epochs: int = 10
    lam: float = 1.0
    lr_g: float = 2e-3
    lr_d: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay: Literal["constant", "cosine"] = "cosine"
    d_steps: int = 1


def train_interpretgan(
    gan: InterpretGAN,
    classifier: nn.Module,
    latent_of: LayerFn,
    batches: Callable[[int], Iterable[torch.Tensor]],
    steps_per_epoch: int,
    schedule: GanSchedule,
    device: torch.device | str = "cpu",
) -> list[dict[str, float]]:
    """Train ``gan`` for its layer with Eq. 4: ``V(D, G) - λ L_I(G)``.

    Args:
        classifier: f, images in [0, 1] -> logits; frozen and in eval mode during
            training (its state is restored after).
        latent_of: ``x -> {gan.layer: l, "logits": f(x)}`` (l = f_pre(x)).
        batches: ``epoch -> iterable of data images`` (B, C, H, W) in [0, 1].

    Returns:
        One record per epoch: ``d_loss`` (BCE of D), ``g_gan`` (non-saturating G loss),
        ``interpretability`` (mean L_I, <= 0; higher is better) and ``agreement``
        (share of explanations f gives x's class).
    """
    gan.to(device)
    c_g = [*gan.compressor.parameters(), *gan.generator.parameters()]
    opt_g = torch.optim.Adam(c_g, lr=schedule.lr_g, betas=schedule.betas)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=schedule.lr_d, betas=schedule.betas)
    total = max(1, schedule.epochs * steps_per_epoch)
    history: list[dict[str, float]] = []
    step = 0
    with frozen(classifier):
        for epoch in range(schedule.epochs):
            gan.train()
            sums = {"d_loss": 0.0, "g_gan": 0.0, "interpretability": 0.0, "agreement": 0.0}
            seen = 0
            for xb in track(batches(epoch), total=steps_per_epoch, desc=f"{gan.layer} {epoch + 1}"):
                if schedule.lr_decay == "cosine":
                    scale = 0.5 * (1 + math.cos(math.pi * step / total))
                    for opt, lr in ((opt_g, schedule.lr_g), (opt_d, schedule.lr_d)):
                        for g in opt.param_groups:
                            g["lr"] = lr * scale
                x = xb.to(device)
                with torch.no_grad():
                    out = latent_of(x)
                    latent, y = out[gan.layer], out["logits"].argmax(1)
                fake = gan(latent)
                for _ in range(schedule.d_steps):
                    d_real, d_fake = gan.discriminator(x), gan.discriminator(fake.detach())
                    d_loss = F.binary_cross_entropy_with_logits(
                        d_real, torch.ones_like(d_real)
                    ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
                    opt_d.zero_grad(set_to_none=True)
                    d_loss.backward()
                    opt_d.step()
                d_gen = gan.discriminator(fake)
                g_gan = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
                logits = classifier(fake)
                l_i = interpretability_term(logits, y)
                g_loss = g_gan - schedule.lam * l_i
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                # D's parameters also received gradients through d_gen: clear them.
                opt_d.zero_grad(set_to_none=True)
                step += 1
                n = len(x)
                seen += n
                sums["d_loss"] += float(d_loss.detach()) * n
                sums["g_gan"] += float(g_gan.detach()) * n
                sums["interpretability"] += float(l_i.detach()) * n
                sums["agreement"] += float((logits.argmax(1) == y).sum())
            record = {"epoch": epoch + 1, **{k: v / max(seen, 1) for k, v in sums.items()}}
            log.info(
                "%s epoch %d/%d: D %.3f, G %.3f, L_I %.3f, agreement %.3f",
                gan.layer,
                epoch + 1,
                schedule.epochs,
                record["d_loss"],
                record["g_gan"],
                record["interpretability"],
                record["agreement"],
            )
            history.append(record)
    gan.eval()
    return history


@torch.no_grad()
def explain(
    gan: InterpretGAN, latent_of: LayerFn, x: torch.Tensor, batch_size: int = 128
) -> torch.Tensor:
    """Explanations ``G(C(f_pre(x)))`` of ``x`` at ``gan.layer``, in eval mode (restored).

    Shape:
        x: (N, C, H, W) float32 in [0, 1]; returns (N, C, H', W') float32 in [0, 1]
        (H' = W' = the GAN's ``image_size``, the data's size).
    """
    was = gan.training
    gan.eval()
    try:
        out = [
            gan(latent_of(x[s : s + batch_size])[gan.layer]) for s in range(0, len(x), batch_size)
        ]
    finally:
        gan.train(was)
    if not out:
        size = int(gan.config["image_size"])  # type: ignore[call-overload]
        channels = int(gan.config["channels"])  # type: ignore[call-overload]
        return torch.zeros(0, channels, size, size)
    return torch.cat(out)


GANS_FORMAT = "advinterp-interpretgan/1"


def gans_state(gans: dict[str, InterpretGAN], **metadata: Any) -> dict[str, Any]:
    """A plain dict (tensors, strings, numbers) holding every layer's C, G and D.

    Saved with ``torch.save`` and read back with ``weights_only=True`` loading.
    """
    return {
        "format": GANS_FORMAT,
        "layers": list(gans),
        "gans": {
            name: {
                "config": gan.config,
                "state_dict": {k: v.detach().cpu() for k, v in gan.state_dict().items()},
            }
            for name, gan in gans.items()
        },
        "metadata": metadata,
    }


def gans_from_state(obj: dict[str, Any], origin: str) -> dict[str, InterpretGAN]:
    """Rebuild the InterpretGANs of :func:`gans_state`, in eval mode, by layer.

    Raises:
        CheckpointError: naming ``origin`` when the dict is not such a state or a
            network's weights do not fit its recorded configuration.
    """
    if obj.get("format") != GANS_FORMAT:
        raise CheckpointError(f"{origin}: not an InterpretGAN checkpoint ({GANS_FORMAT})")
    gans = {}
    for name in obj["layers"]:
        entry = obj["gans"][name]
        try:
            gan = interpretgan_from_config(entry["config"])
            gan.load_state_dict(entry["state_dict"], strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise CheckpointError(f"{origin}: InterpretGAN for {name}: {first}") from None
        gans[name] = gan.eval()
    return gans
