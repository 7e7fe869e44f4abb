"""PGD: projected gradient descent with a random start (Madry et al. 2018), L-inf.

Gulshad et al. generate the adversarial examples of adversarial training (Eq. 2) with
"projected gradient descent, a multi-step variant of FGSM" (Sec. 4). PGD is IFGSM
(:func:`advinterp.attacks.ifgsm.linf_iterate`, the same loop) started from a uniformly
random point of the eps-ball instead of the clean image.
"""

from __future__ import annotations

from advinterp.attacks.ifgsm import SignGradientAttack
from advinterp.attacks.ifgsm import uniform_start as random_start

__all__ = ["pgd", "random_start"]

pgd = SignGradientAttack(random_start=True)
"""PGD adversarial examples: :class:`SignGradientAttack` from ``random_start(x, eps,
generator)``, ``step_size`` defaulting to 2.5 eps / steps."""
