"""IFGSM/BIM throughput against torchattacks' BIM and against the gradient floor.

Floor: one IFGSM step costs one forward and one backward to the input, so the best
possible images/s of an s-step attack is (bare forward+input-gradient images/s) / s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchattacks

from advinterp.attacks.ifgsm import ifgsm
from advinterp.models.classifier import build_classifier
from advinterp.models.frozen import frozen
from bench.rows import Row, interleaved_best, throughput_row


def run(batch: int = 128, size: int = 64, steps: int = 10, eps: float = 0.06) -> list[Row]:
    torch.manual_seed(0)
    model = build_classifier("tiny_resnet", 20, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).eval()
    x = torch.rand(batch, 3, size, size)
    y = torch.randint(0, 20, (batch,))
    alpha = 2.5 * eps / steps
    bim = torchattacks.BIM(model, eps=eps, alpha=alpha, steps=steps)

    def floor_pass() -> None:
        with frozen(model), torch.enable_grad():
            for _ in range(steps):
                xa = x.clone().requires_grad_(True)
                torch.autograd.grad(F.cross_entropy(model(xa), y, reduction="sum"), xa)

    best = interleaved_best(
        {
            "ours": lambda: ifgsm(model, x, y, eps=eps, steps=steps, step_size=alpha),
            "torchattacks": lambda: bim(x, y),
            "floor": floor_pass,
        },
        repeat=3,
    )
    note = (
        f"batch {batch}, {size}px tiny_resnet, {steps} steps; ours {batch / best['ours']:.0f} img/s"
    )
    return ifgsm_rows("attack (IFGSM)", best, note)


def ifgsm_rows(stage: str, best: dict[str, float], note: str) -> list[Row]:
    """IFGSM's rows from best times (s) of ``ours``, ``torchattacks`` (BIM) and ``floor``
    (bare forward + input gradient, ``steps`` times): the CPU and the GPU benchmark's."""
    peers = {  # key in best: (peer, its short name, target ratio)
        "torchattacks": ("torchattacks BIM", "theirs", 1.0),
        "floor": ("floor: bare fwd+input-grad / steps", "floor", 0.90),
    }
    return [
        throughput_row(
            stage,
            peer,
            f"throughput ratio (ours/{short})",
            best["ours"],
            best[key],
            target,
            note=note,
        )
        for key, (peer, short, target) in peers.items()
    ]
