import numpy as np
import pytest
from PIL import Image

from lamo.effect import compare
from lamo.report import fmt_mean_std, plot_forest, plot_sweep_effects, side_by_side, write_html


def test_side_by_side_gif_animates_and_keeps_each_clip(tmp_path):
    a = np.zeros((6, 8, 8, 3), np.uint8)
    b = np.full((4, 8, 8, 3), 200, np.uint8)  # shorter clips hold their last frame
    for t in range(6):
        a[t, 2:4, t : t + 2] = 255  # a moving square, so every frame differs
    path = side_by_side(tmp_path / "x.gif", [a, b], ["left", "right"], scale=2, gap=3)
    im = Image.open(path)
    assert im.n_frames == 6 and im.info.get("loop") == 0
    assert im.size == (2 * 8 * 2 + 3, 8 * 2 + 14)
    frame = np.asarray(im.convert("RGB"))
    assert frame[14 + 5, 16 + 3 + 5].min() > 150  # the right tile is the bright clip
    with pytest.raises(ValueError, match="one label per clip"):
        side_by_side(tmp_path / "y.gif", [a], ["a", "b"])


def test_html_page_escapes_text_and_links_images(tmp_path):
    rng = np.random.default_rng(0)
    base = [{"jump_rate": x, "detection_rate": 1.0} for x in rng.random(32)]
    other = [{"jump_rate": r["jump_rate"] * 0.5, "detection_rate": float("nan")} for r in base]
    plot_forest(tmp_path / "m.png", {"b vs a": compare(base, other, ["jump_rate", "detection_rate"])})
    page = write_html(tmp_path / "index.html", "R<e>port", [
        {"title": "Results", "text": ["x < y"], "table": {"header": ["name", "v"], "rows": [["a", "1"]]},
         "images": ["m.png"]}])
    text = page.read_text()
    assert "R&lt;e&gt;port" in text and "x &lt; y" in text and "<img src='m.png'" in text
    assert (tmp_path / "m.png").stat().st_size > 1000
    assert fmt_mean_std(0.12345, 0.0456) == "0.123 ± 0.046" and fmt_mean_std(float("nan")) == "–"


def test_sweep_plot_draws_each_series(tmp_path):
    point = {"physics_error": {"rel": -0.1, "rel_ci": [-0.2, 0.0]}, "detection_rate": {"diff": 0.0, "diff_ci": [-0.01, 0.01]}}
    path = plot_sweep_effects(tmp_path / "s.png", {"τ=1": {"0.3": point, "1": point}, "τ=2": {"1": point}})
    assert Image.open(path).size[0] > 500
