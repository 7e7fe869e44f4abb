"""``explainers``: saliency and guided backprop beside their floor.

Both cost one forward and one backward to the input per image (guided backprop only
changes what the ReLUs pass back), so their floor is the bare forward+input-gradient
of the same classifier on the same batch, parameters frozen.
"""

from __future__ import annotations

import torch

from advinterp.explainers.guided_backprop import guided_backprop
from advinterp.explainers.saliency import saliency
from advinterp.models.classifier import build_classifier
from advinterp.models.frozen import frozen
from bench.rows import Row, interleaved_best


def run(batch: int = 64, size: int = 64) -> list[Row]:
    torch.manual_seed(0)
    model = build_classifier("tiny_resnet", 20, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    model.eval()
    x = torch.rand(batch, 3, size, size)
    target = torch.randint(0, 20, (batch,))

    def floor() -> None:
        with frozen(model), torch.enable_grad():
            xa = x.clone().requires_grad_(True)
            torch.autograd.grad(model(xa).gather(1, target[:, None]).sum(), xa)

    best = interleaved_best(
        {
            "floor": floor,
            "saliency": lambda: saliency(model, x, target),
            "guided_backprop": lambda: guided_backprop(model, x, target),
        },
        repeat=5,
    )
    return [
        Row(
            f"explain ({name.replace('_', ' ')}, captum)",
            "floor: bare fwd+input-grad, same batch",
            "throughput ratio (ours/floor)",
            1 / best[name],
            1 / best["floor"],
            0.9,
            higher_is_better=True,
            note=f"batch {batch}, {size}px tiny_resnet; {batch / best[name]:.0f} img/s",
        )
        for name in ("saliency", "guided_backprop")
    ]
