"""Class choices in params that hold whatever dataset ``dataset`` names.

A class-valued param (an attack's target class, the classes a method explains) is
written relative to the dataset, so switching datasets is an edit of ``dataset`` alone:

* a class index, ``3`` (0-based, the order of the dataset's class list);
* a class name, ``"class_003"`` or, for CUB, ``"Laysan_Albatross"`` as well as
  ``"002.Laysan_Albatross"`` (the number prefix of ``classes.txt`` is optional);
* ``{draw: k}`` for a list: ``k`` distinct classes drawn with ``base.seed``, sorted.
  Every ``{draw: k}`` of a params file draws the same prefix of one permutation, so
  two sections asking for 2 classes get the same 2 (a2e_explain and a2e_robust explain
  the same classes, as the paper does).

The models only check the form; :func:`resolve_class` and :func:`resolve_classes` turn
a choice into indices once the class names are known, in the stage that uses them and,
for the whole params file at once, in ``stages/validate.py`` before anything expensive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, WrapValidator

from advinterp.config.core import Section
from advinterp.errors import ParamError


def _plainly(expected: str) -> WrapValidator:
    """Replace pydantic's per-branch union errors by one line saying what is expected."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(f"expected {expected}") from None

    return WrapValidator(validate)


ClassRef = Annotated[
    Annotated[int, Field(ge=0)] | Annotated[str, Field(min_length=1)],
    _plainly("a class index (>= 0) or a class name"),
]
"""One class: an index (>= 0) or a name."""

# A fixed stream of base.seed: the draw does not move when other seeded draws change.
_DRAW_STREAM = 0xC1A55


class ClassDraw(Section):
    """``{draw: k}``: ``k`` distinct classes drawn with ``base.seed``."""

    draw: int = Field(ge=1, description="how many classes to draw")


ClassList = Annotated[
    Annotated[list[ClassRef], Field(min_length=1)] | ClassDraw,
    _plainly("a non-empty list of class indices or names, or {draw: k} with k >= 1"),
]
"""Several classes: a non-empty list of indices or names, or ``{draw: k}``."""


def class_draw(num_classes: int, k: int, seed: int) -> list[int]:
    """``k`` distinct classes of ``num_classes``, drawn with ``seed``, sorted.

    The first ``k`` of one seeded permutation, so a larger ``k`` keeps the smaller
    draw's classes.
    """
    order = np.random.default_rng([seed, _DRAW_STREAM]).permutation(num_classes)
    return sorted(int(c) for c in order[:k])


def resolve_class(choice: ClassRef, class_names: Sequence[str], param: str) -> int:
    """The index of one class choice.

    Raises:
        ParamError: naming ``param`` when the index is out of range or no class has
            the name.
    """
    C = len(class_names)
    if isinstance(choice, bool) or not isinstance(choice, int | str):
        raise ParamError(f"{param}: {choice!r} is neither a class index nor a class name")
    if isinstance(choice, int):
        if not 0 <= choice < C:
            raise ParamError(
                f"{param}: class {choice} does not exist (the dataset has {C} classes, "
                f"0..{C - 1}); name a class or use {{draw: k}} to stay valid across datasets"
            )
        return choice
    for i, name in enumerate(class_names):
        if choice in (name, name.partition(".")[2] if name[:1].isdigit() else name):
            return i
    shown = ", ".join(class_names[:5]) + (", ..." if C > 5 else "")
    raise ParamError(f"{param}: no class is named {choice!r} (the dataset's classes: {shown})")


def resolve_classes(
    choice: ClassList, class_names: Sequence[str], seed: int, param: str
) -> list[int]:
    """The class indices of a list choice, in the order given (a draw: sorted).

    Raises:
        ParamError: naming ``param`` for an unknown class, a repeated one, or a draw of
            more classes than the dataset has.
    """
    C = len(class_names)
    if isinstance(choice, ClassDraw):
        if choice.draw > C:
            raise ParamError(f"{param}: draw {choice.draw} classes of a dataset with {C}")
        return class_draw(C, choice.draw, seed)
    picked = [resolve_class(c, class_names, f"{param}[{i}]") for i, c in enumerate(choice)]
    if len(set(picked)) != len(picked):
        raise ParamError(f"{param}: a class is listed twice ({list(choice)})")
    return picked
