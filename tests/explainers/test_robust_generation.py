"""Robust-model applications of attack-to-explain (Jalwana et al. Sec. 5.2) and the baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchattacks

from advinterp.attacks.attack_to_explain import A2EParams, attack_to_explain
from advinterp.explainers.robust_generation import (
    box_mask,
    corrupt,
    crude_sketch,
    fit_class_gaussian,
    inpainting_penalty,
    masked_mse,
    targeted_pgd_l2,
)
from tests.attacks.colour_model import SIZE, colour_model, reddish

pytestmark = pytest.mark.usefixtures("one_thread")


def test_gaussian_fit_is_the_mean_and_covariance_of_the_downsampled_images():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(30, 3, 8, 8, generator=g)
    gauss = fit_class_gaussian(images, downsample=2, ridge=1e-4)
    low = images.view(30, 3, 4, 2, 4, 2).mean(dim=(3, 5)).flatten(1).double().numpy()
    assert gauss.low_shape == (3, 4, 4)
    np.testing.assert_allclose(gauss.mean.numpy(), low.mean(0), atol=1e-6)
    expected = np.cov(low, rowvar=False, bias=True) + 1e-4 * np.eye(48)  # Σ = E[(I-μ)ᵀ(I-μ)]
    np.testing.assert_allclose(gauss.covariance().numpy(), expected, atol=1e-6)


def test_gaussian_sampler_reproduces_the_fitted_mean_and_covariance():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(30, 3, 8, 8, generator=g)
    gauss = fit_class_gaussian(images, downsample=2, ridge=1e-4)
    draws = gauss.sample_low(40000, torch.Generator().manual_seed(2)).double().numpy()
    np.testing.assert_allclose(draws.mean(0), gauss.mean.numpy(), atol=4e-3)
    cov = np.cov(draws, rowvar=False)
    fitted = gauss.covariance().numpy()
    assert np.abs(cov - fitted).max() < 3e-3  # entries up to ~0.03, sampling error ~5e-4
    assert np.abs(fitted).max() > 0.01


def test_gaussian_samples_are_upsampled_images_in_unit_range():
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    gauss = fit_class_gaussian(images, downsample=4)
    x = gauss.sample(5, torch.Generator().manual_seed(0), (8, 8))
    assert x.shape == (5, 3, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    a = gauss.sample(2, torch.Generator().manual_seed(3), (8, 8))
    b = gauss.sample(2, torch.Generator().manual_seed(3), (8, 8))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="two images"):
        fit_class_gaussian(images[:1])


def _inpaint(beta: float):
    model = colour_model()
    x = reddish(16)
    mask = box_mask((SIZE, SIZE), (4, 4, 8, 8))
    seed = corrupt(x[0], mask, 0.5)
    prm = A2EParams(eta=3.0, batch_size=4, gamma=0.99, max_iterations=30, refine_every=0)
    res = attack_to_explain(
        model,
        seed,
        x[1:],
        2,
        prm,
        torch.Generator().manual_seed(0),
        penalty=inpainting_penalty(mask, beta),
        refine=False,
    )
    return res.applied_to(seed), seed, mask


def test_inpainting_leaves_the_unmasked_region_nearly_unchanged():
    out, seed, mask = _inpaint(beta=10.0)
    inside = masked_mse(out, seed, mask)
    outside = masked_mse(out, seed, 1 - mask)
    assert inside > 1e-3  # the corrupt region was repainted...
    assert outside < 0.01 * inside  # ...and little else
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # without Eq. 4's term the perturbation spreads over the whole image
    free, _, _ = _inpaint(beta=0.0)
    assert masked_mse(free, seed, 1 - mask) > 20 * outside


def test_inpainting_penalty_is_the_l2_norm_outside_the_mask():
    mask = box_mask((2, 2), (0, 0, 1, 1))
    delta = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 2, 2).expand(3, 2, 2)
    expected = 10.0 * np.sqrt(3 * (4 + 9 + 16))
    assert float(inpainting_penalty(mask, 10.0)(delta)) == pytest.approx(expected, rel=1e-6)
    zero = torch.zeros(3, 2, 2, requires_grad=True)
    (grad,) = torch.autograd.grad(inpainting_penalty(mask, 10.0)(zero), zero)
    assert torch.all(torch.isfinite(grad)) and torch.all(grad == 0)


def test_pgd_baseline_matches_torchattacks_pgdl2():
    model = colour_model()
    x = reddish(4)
    targets = torch.full((4,), 2)
    ours = targeted_pgd_l2(model, x, targets, eps=1.5, steps=5, step_size=0.4)
    atk = torchattacks.PGDL2(model, eps=1.5, alpha=0.4, steps=5, random_start=False)
    atk.set_mode_targeted_by_label(quiet=True)
    ref = atk(x, targets)
    assert torch.allclose(ours, ref, atol=1e-5)
    assert torch.all((ours - x).flatten(1).norm(dim=1) <= 1.5 + 1e-5)
    with torch.no_grad():
        assert float(F.softmax(model(ours), 1)[:, 2].mean()) > float(
            F.softmax(model(x), 1)[:, 2].mean()
        )


def test_pgd_baseline_with_the_penalty_stays_inside_the_mask():
    model = colour_model()
    x = reddish(2)
    mask = box_mask((SIZE, SIZE), (4, 4, 8, 8))
    seeds = corrupt(x, mask, 0.5)
    out = targeted_pgd_l2(
        model, seeds, torch.full((2,), 2), eps=3.0, steps=20, penalty=inpainting_penalty(mask)
    )
    assert masked_mse(out, seeds, 1 - mask) < 0.01 * masked_mse(out, seeds, mask)


def test_masks_corruption_and_masked_error_by_hand():
    mask = box_mask((4, 4), (1, 2, 2, 1))
    assert mask.sum() == 2 and mask[1, 2] == 1 and mask[2, 2] == 1
    image = torch.zeros(3, 4, 4)
    bad = corrupt(image, mask, fill=0.5)
    assert torch.equal(bad[:, 1:3, 2], torch.full((3, 2), 0.5))
    assert bad.sum() == pytest.approx(3 * 2 * 0.5)
    assert masked_mse(bad, image, mask) == pytest.approx(0.25)
    assert masked_mse(bad, image, 1 - mask) == 0.0


def test_crude_sketch_is_a_few_flat_colours():
    g = torch.Generator().manual_seed(0)
    image = 0.2 + 0.02 * torch.rand(3, 32, 32, generator=g)
    image[0, 8:24, 4:16] += 0.7  # a red and a blue block on a grey ground
    image[2, 8:24, 18:28] += 0.6
    sketch = crude_sketch(image, n_segments=6)
    assert sketch.shape == image.shape and sketch.dtype == torch.float32
    assert float(sketch.min()) >= 0.0 and float(sketch.max()) <= 1.0
    colours = torch.unique(sketch.flatten(1).T, dim=0)
    assert 2 <= len(colours) <= 12
    # each blob holds the mean colour of its pixels: the image mean is preserved
    assert torch.allclose(sketch.mean(dim=(1, 2)), image.mean(dim=(1, 2)), atol=1e-5)
