"""Attack to explain (Jalwana et al.): Algorithm 1, Algorithm 2 and their alternation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from skimage.filters import threshold_otsu

from advinterp.attacks.attack_to_explain import (
    A2EParams,
    A2EResult,
    at_image_size,
    attack_to_explain,
    conv_base_activation,
    energy_near,
    estimate_perturbation,
    eta_at_size,
    mean_colour,
    patch_box,
    refine_perturbation,
    refinement_mask,
    target_probability,
    visualise_perturbation,
    with_patch,
)
from tests.attacks.colour_model import SIZE, colour_model, reddish

pytestmark = pytest.mark.usefixtures("one_thread")


def params(**kw) -> A2EParams:
    defaults = dict(
        eta=4.0, batch_size=4, gamma=0.99, max_iterations=25, refine_every=0, step_size=0.05
    )
    return A2EParams(**{**defaults, **kw})


@pytest.mark.parametrize("step_size", [1.0, 0.05])
@pytest.mark.parametrize("accumulate_seed", [True, False])
def test_norm_never_exceeds_eta_and_model_inputs_stay_in_unit_range(step_size, accumulate_seed):
    model = colour_model()
    seen: list[tuple[float, float]] = []
    handle = model.register_forward_pre_hook(
        lambda _m, inp: seen.append((float(inp[0].detach().min()), float(inp[0].detach().max())))
    )
    try:
        samples = reddish(12)
        prm = params(
            eta=2.5,
            step_size=step_size,
            accumulate_seed=accumulate_seed,
            max_iterations=8,
            refine_every=3,
            refine_until=14,
        )
        res = attack_to_explain(model, samples[0], samples[1:], 2, prm, torch.Generator())
    finally:
        handle.remove()
    assert res.iterations == 14 and res.refinements >= 2
    assert res.norms.max() <= 2.5 * (1 + 1e-5)
    assert float(res.perturbation.norm()) <= 2.5 * (1 + 1e-5)
    assert seen and min(lo for lo, _ in seen) >= 0.0 and max(hi for _, hi in seen) <= 1.0


def test_target_probability_rises_over_iterations():
    model = colour_model()
    samples = reddish(16)
    seed = samples[0]
    before = float(target_probability(model, samples, 2).mean())
    est = estimate_perturbation(
        model, seed, samples[1:], 2, params(max_iterations=30), torch.Generator().manual_seed(0)
    )
    h = np.asarray(est.history)
    assert len(h) == 30  # γ = 0.99 is out of reach at this η: runs to the cap
    assert h[-5:].mean() > h[0] + 0.15
    after = float(target_probability(model, (samples + est.perturbation).clamp(0, 1), 2).mean())
    assert after > before + 0.2
    # the perturbation adds blue: the target's colour, what the model takes class 2 to be
    assert est.perturbation[2].mean() > 0 > est.perturbation[0].mean()


def test_stops_once_expected_probability_reaches_gamma():
    model = colour_model()
    samples = reddish(10)
    est = estimate_perturbation(
        model, samples[0], samples[1:], 2, params(gamma=0.2, max_iterations=60), torch.Generator()
    )
    assert est.history[-1] >= 0.2
    assert all(h < 0.2 for h in est.history[:-1])
    assert est.iterations < 60


def test_sign_test_picks_descent_of_the_cross_entropy():
    """ρ is built from ∇J (J = target cross-entropy); lines 11-19 must flip it to -ρ."""
    model = colour_model()
    samples = reddish(10)
    est = estimate_perturbation(
        model, samples[0], samples[1:], 2, params(max_iterations=10), torch.Generator()
    )
    assert np.mean(np.asarray(est.signs) == -1) >= 0.8


def test_fixed_iterations_ignore_gamma_and_start_from_init():
    model = colour_model()
    samples = reddish(6)
    init = torch.zeros(3, SIZE, SIZE)
    init[2] = 0.2
    est = estimate_perturbation(
        model,
        samples[0],
        samples[1:],
        2,
        params(gamma=0.0),
        torch.Generator(),
        init=init,
        iterations=3,
    )
    assert est.iterations == 3


def test_model_state_restored_and_no_hooks_left():
    model = colour_model().train()
    samples = reddish(6)
    attack_to_explain(
        model,
        samples[0],
        samples[1:],
        2,
        params(max_iterations=3, refine_every=2, refine_until=5),
        torch.Generator(),
    )
    assert model.training and all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())


def test_refinement_mask_keeps_only_above_threshold_cells():
    rng = np.random.default_rng(0)
    a = 0.3 * rng.random((8, 8))  # below-threshold activity everywhere...
    a[:3, :3] = 1.0  # ...and one salient block
    above = a > threshold_otsu(a)
    assert above.sum() == 9 and above[:3, :3].all()
    f = refinement_mask(a, (64, 64), lam=5.0)
    assert f.shape == (64, 64)
    # bicubic support is two source cells (8 px each): a pixel whose taps hold no
    # above-threshold cell is exactly zero, i.e. source coordinate >= 5 on an axis
    assert torch.all(f[44:, :] == 0) and torch.all(f[:, 44:] == 0)
    assert float(f[4:20, 4:20].min()) >= 4.5  # λ, give or take bicubic overshoot
    assert abs(float(f[4:20, 4:20].mean()) - 5.0) < 0.5
    constant = refinement_mask(np.ones((4, 4)), (8, 8), lam=5.0)
    assert torch.equal(constant, torch.ones(8, 8))


def test_refine_perturbation_focuses_on_the_salient_region():
    model = colour_model()
    g = torch.Generator().manual_seed(0)
    p = 0.01 * torch.randn(3, SIZE, SIZE, generator=g)
    p[:, :8, :8] += 0.05  # strong positive signal top-left: high ReLU activation there
    omega = conv_base_activation(model, (p + model.mean[0])[None])
    assert omega.shape == (1, 3, SIZE, SIZE)
    refined = refine_perturbation(model, p, lam=5.0)
    assert refined.abs().max() <= 1.0

    def share(q: torch.Tensor) -> float:
        e = q.pow(2)
        return float(e[:, :8, :8].sum() / e.sum())

    assert share(refined) > share(p) + 0.05
    # far from the salient quarter the mask is zero: nothing survives there
    assert torch.all(refined[:, 14:, 14:] == 0)
    inside = refined[:, 2:6, 2:6] / p[:, 2:6, 2:6]
    assert torch.allclose(inside, torch.full_like(inside, 5.0), atol=0.6)


def test_patch_and_visualisation():
    x = reddish(3)
    colour = mean_colour(x)
    assert torch.allclose(colour, x.mean(dim=(0, 2, 3)))
    patched = with_patch(x, (2, 3, 4, 5), colour)
    assert torch.allclose(patched[:, :, 2:6, 3:8], colour.view(1, 3, 1, 1).expand(3, 3, 4, 5))
    assert torch.equal(patched[:, :, 8:], x[:, :, 8:])
    v = visualise_perturbation(torch.tensor([-0.2, 0.0, 0.1]).view(1, 3, 1, 1).expand(1, 3, 2, 2))
    assert torch.allclose(v[0, :, 0, 0], torch.tensor([0.0, 0.5, 0.75]))


def test_params_are_checked():
    with pytest.raises(ValueError, match="eta"):
        A2EParams(eta=0.0, batch_size=4, gamma=0.5, max_iterations=3)


@pytest.mark.parametrize(
    ("size", "frac", "pos", "box"),
    [
        (32, 0.25, (0.2, 0.2), (6, 6, 8, 8)),  # round(6.4) = 6
        (32, 0.25, (0.9, 0.0), (24, 0, 8, 8)),  # pushed back inside: 29 -> 32 - 8
        (10, 0.01, (0.5, 0.5), (5, 5, 1, 1)),  # at least one pixel
    ],
)
def test_patch_box_is_a_square_inside_the_image(size, frac, pos, box):
    assert patch_box(size, frac, pos) == box


def test_energy_near_counts_the_box_grown_by_half_its_side():
    p = torch.zeros(3, 10, 10)
    p[0, 4, 4] = 2.0  # energy 4 inside the 2x2 box at (4, 4)
    p[1, 3, 3] = 1.0  # energy 1 in the grown border (3..6 x 3..6)
    p[2, 9, 9] = 1.0  # energy 1 far away
    share, area = energy_near(p, (4, 4, 2, 2))
    assert share == pytest.approx(5 / 6)
    assert area == pytest.approx(16 / 100)
    # clipped at the image border: rows/cols 0..2 of the box at (0, 0) side 2
    assert energy_near(p, (0, 0, 2, 2)) == (0.0, pytest.approx(9 / 100))


def test_result_applied_to_a_seed_is_clipped_seed_plus_perturbation():
    p = torch.tensor([[[0.5, -0.5], [0.2, -0.1]]]).expand(3, 2, 2)
    res = A2EResult(p, np.zeros(1), np.zeros(1), 1, 0)
    seed = torch.full((3, 2, 2), 0.6)
    want = torch.tensor([[[1.0, 0.1], [0.8, 0.5]]]).expand(3, 2, 2)
    torch.testing.assert_close(res.applied_to(seed), want, rtol=0, atol=1e-7)


def test_eta_at_size_keeps_the_rms_per_pixel_value():
    # The paper's η = 10 is at 224 px: at 64 px the same rms per value is 10 * 64 / 224,
    # not 10 (3.5x the paper's rms).
    def rms(eta: float, side: int) -> float:
        return eta / math.sqrt(3 * side * side)

    assert eta_at_size(10.0, (64, 64), 224) == pytest.approx(10.0 * 64 / 224)
    for side in (16, 64, 224, 448):
        assert rms(eta_at_size(10.0, (side, side), 224), side) == pytest.approx(rms(10.0, 224))
    assert eta_at_size(10.0, (224, 224), 224) == 10.0
    assert eta_at_size(10.0, (64, 64), None) == 10.0  # stated at our size: as is
    # non-square: equal rms over H x W pixels
    assert eta_at_size(10.0, (32, 128), 224) == pytest.approx(10.0 * 64 / 224)
    with pytest.raises(ValueError, match="positive"):
        eta_at_size(10.0, (64, 64), 0)


def test_at_image_size_rescales_only_eta():
    params = A2EParams(eta=40.0, batch_size=4, gamma=0.9, max_iterations=5, step_size=0.01)
    scaled = at_image_size(params, (56, 56), 224)
    assert scaled.eta == pytest.approx(10.0)
    assert dataclasses.replace(scaled, eta=40.0) == params
