"""FGSM, JSMA and C&W (Nguyen et al.'s three attacks) on a small trained model."""

from __future__ import annotations

import pytest
import torch
import torchattacks

from advinterp.attacks.cw import carlini_wagner
from advinterp.attacks.fgsm import fgsm
from advinterp.attacks.ifgsm import ifgsm
from advinterp.attacks.jsma import jsma
from advinterp.attacks.protocol import Attack
from advinterp.attacks.suite import (
    ATTACKS,
    REGISTRY,
    CarliniWagner,
    Fgsm,
    Jsma,
    craft,
    lan_suite,
    perturbation_norms,
    runner_up,
)
from advinterp.config.lan_attacks import LanAttacksConfig
from advinterp.models.predict import predict
from tests.attacks.toy import held_out, standard_toy_model

CFG = LanAttacksConfig.model_validate(
    {
        "fgsm": {"eps": 0.05},
        "jsma": {"theta": 1.0, "gamma": 0.1, "candidates": 64},
        "cw": {"c": 1.0, "kappa": 0.0, "steps": 30, "lr": 0.01},
        "transfer": {"arch": "tiny_resnet", "fgsm_eps": 0.08, "cw_kappa": 2.0},
    }
)
SUITE_CASES = [(s, a) for s in ("direct", "transfer") for a in lan_suite(CFG, s)]


def _correct(n=16):
    model = standard_toy_model()
    x, y = held_out(64)
    ok = predict(model, x, 256) == y
    return model, x[ok][:n], y[ok][:n]


def test_fgsm_is_one_signed_step_of_size_eps():
    model, x, y = _correct(8)
    adv = fgsm(model, x, y, eps=0.03)
    assert torch.equal(adv, ifgsm(model, x, y, eps=0.03, steps=1, step_size=0.03))
    d = adv - x
    assert float(d.abs().max()) <= 0.03 + 1e-6 and float(adv.min()) >= 0 and float(adv.max()) <= 1
    # Away from the [0, 1] box every component moves by exactly eps.
    inside = (x > 0.03) & (x < 0.97)
    assert torch.allclose(d[inside].abs(), torch.full_like(d[inside], 0.03), atol=1e-6)


def test_jsma_matches_torchattacks_choice_by_choice_without_pruning():
    model, x, _ = _correct(6)
    targets = runner_up(model, x)
    ours = jsma(model, x, targets, theta=1.0, gamma=0.03, candidates=None)
    ref = torchattacks.JSMA(model, theta=1.0, gamma=0.03)
    ref.set_mode_targeted_by_label(quiet=True)
    for p in model.parameters():  # torchattacks' backward() would fill parameter grads
        p.requires_grad_(False)
    try:
        theirs = torch.cat([ref(x[i : i + 1], targets[i : i + 1]) for i in range(len(x))])
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    same = (ours - theirs).abs().flatten(1).amax(1) == 0
    # Identical here; one image is allowed to differ if a float near-tie flips a choice
    # (torchattacks sums per-class gradients, this sums the logits before differentiating).
    assert int(same.sum()) >= len(x) - 1, same


def test_jsma_changes_few_features_and_reaches_targets():
    model, x, _ = _correct(16)
    targets = runner_up(model, x)
    adv = jsma(model, x, targets, theta=1.0, gamma=0.05, candidates=64)
    budget = 2 * -(-int(0.05 * x[0].numel()) // 2) + 2  # ceil(γn/2) iterations, 2 features each
    l0 = ((adv - x).abs() > 1e-6).flatten(1).sum(1)
    assert int(l0.max()) <= budget
    assert float(l0.float().median()) < 0.05 * x[0].numel()  # few of the 768 features
    hit = predict(model, adv, 256) == targets
    assert float(hit.float().mean()) >= 0.5
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1


def test_cw_finds_small_l2_perturbations():
    model, x, y = _correct(16)
    adv = carlini_wagner(model, x, y, c=1.0, steps=50, lr=0.01)
    fooled = predict(model, adv, 256) != y
    assert float(fooled.float().mean()) >= 0.5
    l2 = (adv - x).flatten(1).norm(dim=1)[fooled]
    # Small next to the image's own size (sqrt(768) * 0.5 ~ 14) and to FGSM at eps 0.05.
    fgsm_l2 = (fgsm(model, x, y, eps=0.05) - x).flatten(1).norm(dim=1)[fooled]
    assert float(l2.median()) < 0.5 * float(fgsm_l2.median())
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1


def test_lan_suite_configures_each_setting_from_the_params():
    direct, transfer = lan_suite(CFG, "direct"), lan_suite(CFG, "transfer")
    assert tuple(a.name for a in direct) == ATTACKS == tuple(cls.name for cls in REGISTRY)
    assert direct == (Fgsm(0.05), Jsma(1.0, 0.1, 64), CarliniWagner(1.0, 0.0, 30, 0.01))
    # The transfer setting: a larger FGSM budget and a confident C&W margin.
    assert transfer == (Fgsm(0.08), Jsma(1.0, 0.1, 64), CarliniWagner(1.0, 2.0, 30, 0.01))
    assert all(isinstance(a, Attack) for a in (*direct, *transfer))


def test_suite_attacks_call_the_attack_functions():
    model, x, y = _correct(6)
    assert torch.equal(Fgsm(0.05)(model, x, y), fgsm(model, x, y, eps=0.05))
    targets = runner_up(model, x)  # JSMA's target: the runner-up class, not y
    assert torch.equal(
        Jsma(1.0, 0.05, 32)(model, x, y), jsma(model, x, targets, gamma=0.05, candidates=32)
    )


@pytest.mark.parametrize(("setting", "attack"), SUITE_CASES, ids=lambda v: getattr(v, "name", v))
def test_every_attack_keeps_shape_range_budget_and_the_model(setting, attack):
    model, x, y = _correct(4)
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    try:
        adv = craft(attack, model, x, y, batch_size=3)
        assert model.training and [p.requires_grad for p in model.parameters()] == flags
        for p, g in zip(model.parameters(), grads, strict=True):  # no .grad written
            assert (p.grad is None and g is None) or torch.equal(p.grad, g)
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k]), k
    finally:
        model.eval()
    assert adv.shape == x.shape and adv.dtype == torch.float32
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    d = (adv - x).flatten(1)
    if isinstance(attack, Fgsm):
        assert float(d.abs().max()) <= attack.eps + 1e-6
    if isinstance(attack, Jsma):  # two features per iteration, ceil(γn/2) iterations
        budget = 2 * -(-int(attack.gamma * x[0].numel()) // 2) + 2
        assert int((d.abs() > 1e-6).sum(1).max()) <= budget


def test_craft_batches_are_independent_and_empty_input_passes_through():
    model, x, y = _correct(6)
    whole = craft(Fgsm(0.05), model, x, y, batch_size=6)
    assert torch.equal(craft(Fgsm(0.05), model, x, y, batch_size=4), whole)
    assert torch.equal(whole, fgsm(model, x, y, eps=0.05))
    empty = craft(Fgsm(0.05), model, x[:0], y[:0], batch_size=4)
    assert empty.shape == (0, *x.shape[1:])


def test_perturbation_norms_by_hand():
    x = torch.zeros(1, 3, 2, 2).numpy()
    adv = x.copy()
    adv[0, 0, 0, 0] = 0.3
    adv[0, 2, 0, 0] = -0.4
    adv[0, 1, 1, 1] = 0.1
    n = perturbation_norms(x, adv)
    assert n["l0"][0] == 3 and n["pixels"][0] == 2
    assert n["l2"][0] == pytest.approx(0.5099, abs=1e-4) and n["linf"][0] == pytest.approx(0.4)
    empty = perturbation_norms(x[:0], adv[:0])
    assert all(v.shape == (0,) for v in empty.values())
