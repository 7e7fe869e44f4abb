"""Reading the attacked subset's predictions and attributes from the chain's stores."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.errors import StoreError
from advinterp.grounding.chain_arrays import ChainArrays
from tests.grounding.chain_stores import (
    ADV_PRED,
    DATASET_LABELS,
    PHI,
    ROWS,
    TRUE,
    adversarial_attributes,
    chain_stores,
    memory_group,
)


def test_sje_clean_arrays_are_taken_at_the_attacked_rows():
    attack, sje = chain_stores()
    chain = ChainArrays(attack, sje, ROWS, "sje")
    np.testing.assert_array_equal(chain.pred("standard"), DATASET_LABELS[ROWS])
    np.testing.assert_array_equal(chain.attributes("at_0.06"), PHI[DATASET_LABELS[ROWS]])
    np.testing.assert_array_equal(
        chain.pred("standard", "targeted", "eps_0.06"), ADV_PRED[("standard", "targeted")]
    )
    np.testing.assert_array_equal(
        chain.attributes("standard", "untargeted", "eps_0.03"),
        adversarial_attributes(ADV_PRED[("standard", "untargeted")]),
    )
    assert chain.images("at_0.06", "targeted", "eps_0.03").shape == (4, 3, 8, 8)


def test_softmax_predictions_come_from_the_attack_store_attributes_still_from_sje():
    attack, sje = chain_stores()
    chain = ChainArrays(attack, sje, ROWS, "softmax")
    np.testing.assert_array_equal(chain.pred("standard"), TRUE)
    np.testing.assert_array_equal(chain.pred("standard", "untargeted", "eps_0.06"), TRUE)
    np.testing.assert_array_equal(
        chain.attributes("standard", "targeted", "eps_0.06"),
        adversarial_attributes(ADV_PRED[("standard", "targeted")]),
    )


def test_missing_arrays_and_nan_attributes_are_store_errors():
    attack, sje = chain_stores()
    chain = ChainArrays(attack, sje, ROWS)
    with pytest.raises(StoreError, match="missing 'standard/untargeted/eps_0.5/pred'"):
        chain.pred("standard", "untargeted", "eps_0.5")
    bad = np.zeros((4, 3), np.float32)
    bad[2, 1] = np.nan
    sje_nan = memory_group({"standard/untargeted/eps_0.06/attributes": bad})
    with pytest.raises(StoreError, match="standard/untargeted/eps_0.06/attributes: 1 NaN"):
        ChainArrays(attack, sje_nan, ROWS).attributes("standard", "untargeted", "eps_0.06")
