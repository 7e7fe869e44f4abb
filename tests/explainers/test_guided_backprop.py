"""Guided backprop through captum: correct with in-place, reused ReLUs; model restored."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from advinterp.explainers.guided_backprop import guided_backprop, relus_not_inplace
from advinterp.explainers.saliency import saliency
from tests.explainers.models import warmed_tiny_resnet

pytestmark = pytest.mark.usefixtures("one_thread")


class _GuidedReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0).to(grad.dtype)


class _GuidedReLU(nn.Module):
    def forward(self, x):
        return _GuidedReLUFn.apply(x)


def _reference_guided_backprop(model: nn.Module, x: torch.Tensor, target: torch.Tensor):
    """Springenberg et al.'s rule, written independently of captum's hooks."""
    ref = copy.deepcopy(model)
    for module in list(ref.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, name, _GuidedReLU())
    x = x.clone().requires_grad_(True)
    out = ref(x).gather(1, target[:, None]).sum()
    (grad,) = torch.autograd.grad(out, x)
    return grad


def test_matches_an_independent_guided_relu_and_differs_from_the_gradient():
    model = warmed_tiny_resnet(size=16)
    # The model really has in-place ReLUs reused within a block (the case to get right).
    assert any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules())
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 2, 3])
    got = guided_backprop(model, x, target)
    want = _reference_guided_backprop(model, x, target)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(got, saliency(model, x, target), atol=1e-6)


def test_batch_size_does_not_change_the_attribution():
    model = warmed_tiny_resnet(size=16)
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    target = torch.tensor([1, 0, 3, 2])
    whole = guided_backprop(model, x, target)
    parts = torch.cat([guided_backprop(model, x[i : i + 1], target[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(whole, parts, rtol=1e-4, atol=1e-6)


def test_model_is_restored_mode_flags_hooks_grads_and_statistics():
    model = warmed_tiny_resnet(size=16)
    model.train()
    model.head.weight.requires_grad_(False)
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [(m, m.inplace) for m in model.modules() if isinstance(m, nn.ReLU)]
    guided_backprop(model, torch.rand(2, 3, 16, 16), torch.tensor([0, 1]))
    assert model.training and all(m.training for m in model.modules())
    assert all(m.inplace == flag for m, flag in flags)
    assert not model.head.weight.requires_grad
    assert all(p.requires_grad for n, p in model.named_parameters() if n != "head.weight")
    assert all(p.grad is None for p in model.parameters())
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
    for k, v in model.state_dict().items():  # BatchNorm ran in eval mode
        torch.testing.assert_close(v, stats[k])


def test_flags_restored_even_when_the_body_raises():
    model = warmed_tiny_resnet(size=16)
    with pytest.raises(RuntimeError, match="boom"), relus_not_inplace(model):
        raise RuntimeError("boom")
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


def test_a_model_without_relu_modules_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    with pytest.raises(ValueError, match="no nn.ReLU modules"):
        guided_backprop(model, torch.rand(1, 3, 4, 4), torch.tensor([0]))
