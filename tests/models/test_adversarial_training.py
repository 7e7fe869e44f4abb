"""Eq. 2 adversarial training: the mix of losses, the robustness it buys, the per-eps driver."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from advinterp.attacks.ifgsm import ifgsm
from advinterp.attacks.pgd import pgd
from advinterp.data.batches import SplitBatches
from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.models.adversarial_training import (
    adversarial_loss,
    robust_accuracy,
    train_robust_model,
)
from advinterp.models.classifier import build_classifier
from advinterp.models.training import SHUFFLE_BUFFER, accuracy, fit, make_optimizer
from tests.attacks.toy import (
    CLASSES,
    clean_accuracy,
    held_out,
    standard_toy_model,
    toy_images,
    train_toy,
)

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def test_alpha_one_is_clean_cross_entropy_and_params_untouched_by_pgd():
    model = copy.deepcopy(standard_toy_model()).train()
    for p in model.parameters():
        p.grad = None
    x, y = held_out(8)
    loss, logits = adversarial_loss(eps=0.05, alpha=1.0, steps=2)(model, x, y)
    assert all(p.grad is None for p in model.parameters())  # PGD wrote no param grads
    assert all(p.requires_grad for p in model.parameters())
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y))
    assert logits.shape == (8, 4)
    assert model.training


def test_mix_matches_eq2_by_hand():
    model = copy.deepcopy(standard_toy_model()).eval()  # eval: deterministic BN
    x, y = held_out(8)
    gen_seed = 3
    loss, _ = adversarial_loss(
        eps=0.05, alpha=0.3, steps=2, generator=torch.Generator().manual_seed(gen_seed)
    )(model, x, y)
    x_adv = pgd(model, x, y, eps=0.05, steps=2, generator=torch.Generator().manual_seed(gen_seed))
    expected = 0.3 * F.cross_entropy(model(x), y) + 0.7 * F.cross_entropy(model(x_adv), y)
    torch.testing.assert_close(loss, expected)


def test_alpha_zero_is_the_adversarial_loss_with_clean_logits_outside_the_graph():
    model = copy.deepcopy(standard_toy_model()).eval()
    x, y = held_out(8)
    loss, logits = adversarial_loss(
        eps=0.05, alpha=0.0, steps=2, generator=torch.Generator().manual_seed(1)
    )(model, x, y)
    x_adv = pgd(model, x, y, eps=0.05, steps=2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss, F.cross_entropy(model(x_adv), y))
    torch.testing.assert_close(logits, model(x))
    assert not logits.requires_grad  # no backward through the clean pass
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_alpha_out_of_range_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        adversarial_loss(eps=0.1, alpha=1.5)


def test_adversarial_training_raises_adversarial_accuracy():
    standard = standard_toy_model()
    robust = train_toy(
        epochs=3,
        loss_fn=adversarial_loss(eps=0.04, steps=3, generator=torch.Generator().manual_seed(0)),
        init=copy.deepcopy(standard),
    )
    x, y = held_out(64)
    assert clean_accuracy(robust, x, y) >= 0.8
    adv_std = clean_accuracy(standard, ifgsm(standard, x, y, eps=0.02, steps=10), y)
    adv_rob = clean_accuracy(robust, ifgsm(robust, x, y, eps=0.02, steps=10), y)
    assert adv_rob >= adv_std + 0.4, (adv_std, adv_rob)


def test_robust_accuracy_at_eps_zero_is_clean_accuracy_and_is_seeded():
    model = standard_toy_model()
    x, y = held_out(24)
    batches = [(x[s : s + 10].numpy(), y[s : s + 10].numpy()) for s in range(0, 24, 10)]
    cpu = torch.device("cpu")
    clean = accuracy(model, batches, cpu)
    assert robust_accuracy(model, batches, eps=0.0, steps=2, device=cpu, seed=0) == clean
    at = {"eps": 0.05, "steps": 2, "device": cpu, "seed": 4}
    score = robust_accuracy(model, batches, **at)
    assert score == robust_accuracy(model, batches, **at)
    assert 0.0 <= score <= clean
    # By hand: one generator seeded once draws the batches' random starts in turn.
    g = torch.Generator().manual_seed(4)
    correct = sum(
        int(
            (
                model(
                    pgd(
                        model,
                        torch.as_tensor(xb),
                        torch.as_tensor(yb),
                        eps=0.05,
                        steps=2,
                        generator=g,
                    )
                ).argmax(1)
                == torch.as_tensor(yb)
            ).sum()
        )
        for xb, yb in batches
    )
    assert score == correct / 24
    assert robust_accuracy(model, [], **at) == 0.0


def _split_batches(n: int = 24) -> SplitBatches:
    x, y = toy_images(n, seed=5)
    split = np.array([TRAIN] * 16 + [VAL] * 4 + [TEST] * 4, dtype=np.int8)
    return SplitBatches(x, y, split, batch_size=8, chunk_size=8)


def test_train_robust_model_seeds_as_documented():
    data = _split_batches()
    torch.manual_seed(0)
    standard = build_classifier("tiny_resnet", CLASSES, (0.5,) * 3, (0.25,) * 3).eval()
    loads = []

    def load_standard():
        loads.append(1)
        return copy.deepcopy(standard)

    x, y = held_out(8)
    eval_set = [(x.numpy(), y.numpy())]
    cpu = torch.device("cpu")
    params = {"alpha": 0.5, "steps": 1, "step_size": None, "epochs": 1, "augment": True}
    optimizer = {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}
    result = train_robust_model(
        load_standard,
        data,
        eval_set,
        eps=0.05,
        **params,
        optimizer=optimizer,
        eval_steps=2,
        device=cpu,
        seed=7,
    )
    assert len(loads) == 2  # the reference, then the copy it fine-tunes
    assert result.key == "at_0.05"
    assert [(h["model"], h["train_eps"], h["epoch"]) for h in result.history] == [
        ("at_0.05", 0.05, 1)
    ]
    m = result.metrics
    assert m["train_eps"] == 0.05
    assert m["standard_clean_accuracy"] == accuracy(standard, eval_set, cpu)
    assert m["adv_accuracy"] == robust_accuracy(
        result.model, eval_set, eps=0.05, steps=2, device=cpu, seed=7
    )
    # By hand: shuffles from default_rng([seed, 0]), one generator seeded seed + 1000 for
    # augmentation and PGD, whatever other eps are trained.
    rng = np.random.default_rng([7, 0])
    generator = torch.Generator().manual_seed(7 + 1000)
    model = copy.deepcopy(standard)
    fit(
        model,
        lambda epoch: data.shuffled(rng, SHUFFLE_BUFFER),
        lambda: data.ordered(data.monitor),
        epochs=1,
        steps_per_epoch=data.steps_per_epoch,
        optimizer=make_optimizer(model, **optimizer),
        device=cpu,
        generator=generator,
        augment=True,
        loss_fn=adversarial_loss(eps=0.05, alpha=0.5, steps=1, generator=generator),
    )
    trained = result.model.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())
