"""Attack to explain (Jalwana et al.): the method and the attack parameters its stages
share (Algorithm 1). Each stage's section model is in ``advinterp/config/<section>.py``.
"""

from __future__ import annotations

from pydantic import Field

from advinterp.config.core import Method, Section

A2E = Method("a2e", "Attack to explain", "Jalwana et al., Attack to explain deep representation", 4)


class A2EAttackParams(Section):
    """Algorithms 1-2 of Jalwana et al. (attack to explain); paper values in brackets."""

    eta: float = Field(
        gt=0.0,
        description="l2 radius η in [0, 1] pixel units, stated at the section's reference_size "
        "(scaled to the image size at equal rms per value) [10 at 224 px]",
    )
    batch_size: int = Field(8, ge=2, description="mini-batch b: seed + b-1 samples [32]")
    gamma: float = Field(0.8, ge=0.0, le=1.0, description="stop when ℘ >= γ [0.8]")
    max_iterations: int = Field(80, ge=1, description="cap on the first Algorithm 1 run")
    refine_every: int = Field(
        50, ge=0, description="Algorithm 1 iterations between refinements [50]; 0 = none"
    )
    refine_until: int = Field(300, ge=0, description="total iterations of the alternation [300]")
    lam: float = Field(5.0, gt=0.0, description="λ of Algorithm 2 [5]")
    alpha: float = Field(0.9, ge=0.0, lt=1.0)
    beta: float = Field(0.999, ge=0.0, lt=1.0)
    step_size: float = Field(
        1.0 / 255.0,
        gt=0.0,
        description="scale of ρ on lines 11-18: one intensity level of a [0, 255] image",
    )
    accumulate_seed: bool = Field(True, description="line 4 as written: d <- Clip(d + p_t)")
    eval_batch_size: int = Field(256, ge=1)
