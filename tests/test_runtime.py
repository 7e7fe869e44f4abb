"""advinterp.runtime: base.precision autocast, to_device, channels_last (state restored)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.errors import ParamError
from advinterp.models.classifier import build_classifier
from advinterp.models.features import features_and_logits
from advinterp.runtime import autocast, channels_last, precision_attrs, to_device
from bench.precision import fitted_classifier

CPU = torch.device("cpu")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def fitted():
    """tiny_resnet with a head fitted to 4 classes of generated birds, and held-out images."""
    from bench.precision import birds

    images, labels = birds(32, per_class=30, num_classes=4)
    fit, held_out = np.ascontiguousarray(images[::2]), np.ascontiguousarray(images[1::2])
    return fitted_classifier("tiny_resnet", fit, labels[::2], 4, CPU, 32), held_out


def test_fp32_is_bitwise_the_plain_forward(fitted):
    model, images = fitted
    with torch.no_grad():
        plain = model(torch.as_tensor(images[:16]))
        with autocast(CPU, "fp32"), channels_last(model, enabled=False):
            wrapped = model(to_device(images[:16], CPU))
    assert torch.equal(plain, wrapped)
    _, logits = features_and_logits(model, images[:16], 16, CPU, "fp32")
    np.testing.assert_array_equal(logits, plain.numpy())


def test_bf16_agrees_with_fp32_on_a_fitted_classifier(fitted):
    model, images = fitted
    f32, z32 = features_and_logits(model, images, 32, CPU, "fp32")
    f16, z16 = features_and_logits(model, images, 32, CPU, "bf16")
    assert f16.dtype == z16.dtype == np.float32
    assert len(np.unique(z32.argmax(1))) >= 3, "a classifier that predicts one class proves nothing"
    agreement = (z32.argmax(1) == z16.argmax(1)).mean()
    assert agreement >= 0.9, agreement
    assert not np.array_equal(z32, z16), "bf16 autocast did not run"
    np.testing.assert_allclose(f16, f32, rtol=0.1, atol=0.05 * np.abs(f32).max())


def test_bf16_autocast_computes_convolutions_in_bf16():
    conv = torch.nn.Conv2d(3, 4, 3)
    with autocast(CPU, "bf16"):
        assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16
    with autocast(CPU, "fp32"):
        assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.float32


def test_bf16_on_a_cuda_device_without_bf16_is_a_param_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ParamError, match="base.precision: bf16"):
        autocast(torch.device("cuda"), "bf16")


def test_to_device_on_cpu_shares_the_array_memory():
    batch = np.random.default_rng(0).random((2, 3, 4, 4), dtype=np.float32)
    x = to_device(batch, CPU)
    assert np.shares_memory(x.numpy(), batch)
    t = torch.rand(2, 3)
    assert to_device(t, CPU) is t


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_device_on_cuda_copies_from_pinned_memory():
    batch = np.random.default_rng(0).random((2, 3, 4, 4), dtype=np.float32)
    x = to_device(batch, torch.device("cuda"))
    assert x.is_cuda
    np.testing.assert_array_equal(x.cpu().numpy(), batch)


def test_channels_last_inside_and_restored_after():
    torch.manual_seed(0)
    model = build_classifier("resnet18", 5, MEAN, STD).eval()
    model.register_buffer("grid", torch.rand(1, 2, 3, 3))  # a 4-D buffer is restored too
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        with channels_last(model) as same:
            assert same is model
            conv = model.body.conv1.weight
            assert conv.is_contiguous(memory_format=torch.channels_last)
            assert not conv.is_contiguous()
        after = model(x)
    assert all(t.is_contiguous() for t in (*model.parameters(), *model.buffers()))
    assert torch.equal(before, after)


def test_channels_last_restores_even_when_the_block_raises():
    model = torch.nn.Conv2d(3, 8, 3)
    with pytest.raises(RuntimeError, match="boom"), channels_last(model):
        raise RuntimeError("boom")
    assert model.weight.is_contiguous()


def test_features_and_logits_restores_the_model_after_bf16(fitted):
    model, images = fitted
    model.train()
    try:
        features_and_logits(model, images[:4], 4, CPU, "bf16")
        assert model.training
        assert all(p.is_contiguous() for p in model.parameters())
    finally:
        model.eval()


def test_only_bf16_is_recorded_in_a_stores_attrs():
    assert precision_attrs("fp32") == {}
    assert precision_attrs("bf16") == {"precision": "bf16"}
