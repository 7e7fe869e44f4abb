"""advinterp.figures.save_figure writes a PNG atomically and always closes the figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from advinterp.figures import save_figure


def test_writes_png_and_closes(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "a" / "f.png", dpi=30)
    assert (tmp_path / "a" / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)


def test_a_failed_write_leaves_nothing_and_still_closes(tmp_path):
    fig = plt.figure()
    with pytest.raises(ValueError):
        save_figure(fig, tmp_path / "f.png", dpi=-5)
    assert not (tmp_path / "f.png").exists()
    assert not list(tmp_path.iterdir())
    assert not plt.fignum_exists(fig.number)
