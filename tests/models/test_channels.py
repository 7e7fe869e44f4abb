"""Grey (1-channel) images through every model the digits profile builds; RGB unchanged."""

from __future__ import annotations

import pytest
import torch

from advinterp.errors import ParamError
from advinterp.explainers.interpretgan import InterpretGAN, interpretgan_from_config
from advinterp.models.classifier import build_classifier, check_normalisation
from advinterp.models.pooling_cnn import build_pooling_cnn, channel_stats


@pytest.mark.parametrize("arch", ["small_cnn", "tiny_resnet", "tiny_vgg", "shufflenet_v2_x0_5"])
def test_grey_classifiers_read_one_channel(arch):
    model = build_classifier(arch, 10, (0.1,), (0.3,)).eval()
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(RuntimeError):  # an RGB batch no longer fits the stem
        model(torch.rand(2, 3, 28, 28))


def test_rgb_models_are_built_as_before():
    """3 channels never touch the stem swap: same seed, same weights as torchvision's."""
    import torchvision

    torch.manual_seed(0)
    ours = build_classifier("shufflenet_v2_x0_5", 5, (0.5,) * 3, (0.25,) * 3)
    torch.manual_seed(0)
    ref = torchvision.models.get_model("shufflenet_v2_x0_5", weights=None)
    torch.testing.assert_close(ours.body.conv1[0].weight, ref.conv1[0].weight)


def test_normalisation_needs_one_value_per_channel():
    check_normalisation((0.1,), (0.3,), 1, "train")
    with pytest.raises(ParamError, match=r"train.mean: 3 values for images with 1 channel"):
        check_normalisation((0.5,) * 3, (0.2,) * 3, 1, "train")
    with pytest.raises(ParamError, match="one value per channel"):
        build_classifier("small_cnn", 10, (0.1,), (0.3, 0.3))


def test_grey_pooling_cnn_and_its_stats():
    images = torch.rand(6, 1, 28, 28).numpy()
    mean, std = channel_stats(images, torch.arange(6).numpy(), chunk_size=4)
    assert len(mean) == len(std) == 1
    assert mean[0] == pytest.approx(float(images.mean()), rel=1e-6)
    model = build_pooling_cnn("avg", 10, mean, std, widths=(4, 8), fc_width=16, input_size=28)
    assert model(torch.as_tensor(images)).shape == (6, 10)


def test_grey_interpretgan_draws_and_judges_one_channel():
    gan = InterpretGAN(
        "fc1", (16,), 28, channels=1, code_dim=4, gen_width=2, disc_width=2, gen_size=16
    )
    x = gan(torch.rand(3, 16))
    assert x.shape == (3, 1, 28, 28) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert gan.discriminator(x).shape == (3,)
    assert interpretgan_from_config(gan.config).config["channels"] == 1
    legacy = {k: v for k, v in gan.config.items() if k != "channels"}
    assert interpretgan_from_config(legacy).config["channels"] == 3  # old RGB checkpoints
