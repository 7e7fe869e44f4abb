"""Classifiers in pixel space: normalisation inside, pooled features exposed.

Pixel-space contract (DESIGN.md): every image is float32 in [0, 1] and the model's
mean/std normalisation lives inside the wrapper, so attacks, explainers and storage
never see normalised tensors and ``eps`` means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torchvision
from torch import nn

from advinterp.errors import ParamError
from advinterp.models.small_cnn import SmallCNN
from advinterp.models.tiny_resnet import TinyResNet
from advinterp.models.tiny_vgg import TinyVGG

# The small local models by name: ``(num_classes, in_channels) -> backbone``. TinyResNet is
# built with a 1000-way final Linear like torchvision's models, TinyVGG and SmallCNN with
# ``num_classes`` outputs. That Linear is swapped for the head, but its size sets how far
# it advances the seeded RNG before the other layers are initialised: each keeps the size
# its results came from.
LOCAL_ARCHS: dict[str, Callable[[int, int], nn.Module]] = {
    "tiny_resnet": lambda _num_classes, in_channels: TinyResNet(in_channels=in_channels),
    "tiny_vgg": lambda num_classes, in_channels: TinyVGG(num_classes, in_channels=in_channels),
    "small_cnn": lambda num_classes, in_channels: SmallCNN(num_classes, in_channels),
}


class ImageClassifier(nn.Module):
    """``body`` (a torchvision model with its last Linear removed) plus a linear ``head``.

    ``features(x)`` is θ(x) of Gulshad et al.: the pooled penultimate layer.

    Shape:
        x: (N, C_in, H, W) float32 in [0, 1], C_in = len(mean) (3 RGB, 1 grey).
        features: (N, D); forward: (N, C) logits.
    """

    # Buffers (registered in __init__), declared so they type as tensors, not modules.
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        arch: str,
        body: nn.Module,
        head: nn.Linear,
        mean: Sequence[float],
        std: Sequence[float],
    ):
        super().__init__()
        self.arch = arch
        self.body = body
        self.head = head
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ParamError(f"train.arch: '{type(model).__name__}' has no final Linear layer")
    return found[-1]


def _replace(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def available_archs() -> list[str]:
    """Architecture names ``build_classifier`` accepts."""
    return sorted([*LOCAL_ARCHS, *torchvision.models.list_models(module=torchvision.models)])


def build_backbone(arch: str, num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """An untrained model by torchvision name (or a local small one); never downloads.

    ``num_classes`` sizes the final Linear of ``tiny_vgg`` and ``small_cnn`` only;
    torchvision models and ``tiny_resnet`` keep a 1000-way one (why: see ``LOCAL_ARCHS``).
    ``in_channels`` is the images' channel count (torchvision's default of 3 is RGB).
    """
    if arch in LOCAL_ARCHS:
        return LOCAL_ARCHS[arch](num_classes, in_channels)
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ParamError(
            f"train.arch: unknown model '{arch}'; use a torchvision classification model name "
            f"such as resnet152, or one of {sorted(LOCAL_ARCHS)}"
        )
    model = torchvision.models.get_model(arch, weights=None)
    if in_channels != 3:
        _replace_first_conv(model, in_channels)
    return model


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """Swap the first RGB convolution for one reading ``in_channels`` channels.

    torchvision builds every classification model for 3-channel input; a grey dataset
    (the digits) needs the stem to read 1 channel. The new conv keeps every other
    setting (kernel, stride, padding, bias) and its own fresh initialisation; the RGB
    case never comes here, so 3-channel models are built exactly as before.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            new = nn.Conv2d(
                in_channels,
                module.out_channels,
                module.kernel_size,  # type: ignore[arg-type]
                stride=module.stride,  # type: ignore[arg-type]
                padding=module.padding,  # type: ignore[arg-type]
                dilation=module.dilation,  # type: ignore[arg-type]
                groups=module.groups,
                bias=module.bias is not None,
                padding_mode=module.padding_mode,
            )
            _replace(model, name, new)
            return
    raise ParamError(
        f"train.arch: found no 3-channel input convolution to adapt in {type(model).__name__}"
    )


def check_normalisation(
    mean: Sequence[float], std: Sequence[float], channels: int, param: str
) -> None:
    """Refuse a mean/std that does not give one value per image channel.

    Args:
        param: the params key holding them (e.g. ``train``), named in the error.

    Raises:
        ParamError: naming ``<param>.mean`` / ``<param>.std`` and the channel count.
    """
    for key, values in (("mean", mean), ("std", std)):
        if len(values) != channels:
            raise ParamError(
                f"{param}.{key}: {len(values)} values for images with {channels} channel"
                f"{'s' if channels != 1 else ''}; give one value per channel"
            )


def build_classifier(
    arch: str, num_classes: int, mean: Sequence[float], std: Sequence[float]
) -> ImageClassifier:
    """Build an untrained :class:`ImageClassifier` with a fresh ``num_classes`` head.

    The model reads ``len(mean)`` input channels: one normalisation value per channel.
    """
    if len(mean) != len(std) or not len(mean):
        raise ParamError(
            f"mean and std need one value per channel each, got {len(mean)} and {len(std)}"
        )
    model = build_backbone(arch, num_classes, len(mean))
    name, last = _last_linear(model)
    _replace(model, name, nn.Identity())
    head = nn.Linear(last.in_features, num_classes)
    return ImageClassifier(arch, model, head, mean, std)
