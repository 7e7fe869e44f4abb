"""advinterp.models.predict: batched classes equal one big forward; the mode is restored."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from advinterp.models.predict import predict, predict_logits


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Dropout(0.5), nn.Linear(8, 3))


def test_batched_logits_equal_one_forward_and_mode_is_restored():
    model = _model().train()
    x = torch.rand(7, 3, 2, 2)
    got = predict_logits(model, x, batch_size=3)
    assert model.training, "predict must restore train mode"
    model.eval()
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(got, want)
    assert predict(model, x, 2).tolist() == want.argmax(1).tolist()


def test_arrays_and_empty_inputs():
    model = _model().eval()
    x = np.random.default_rng(0).random((5, 3, 2, 2), dtype=np.float32)
    assert predict(model, x, 4).tolist() == predict(model, torch.as_tensor(x), 5).tolist()
    empty = predict(model, np.zeros((0, 3, 2, 2), np.float32), 4)
    assert empty.dtype == torch.long and empty.shape == (0,)
