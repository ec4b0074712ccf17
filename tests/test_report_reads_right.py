"""The report reads right: Greek knobs drawn, animations captioned, the λ sweep readable where the choice is
made, no "improved" at +0.0 %, and an interval that excludes 0 without a verdict explained where it appears."""

import numpy as np

import lamo.report as report
from lamo.demo.report import INTERVAL_ONLY_NOTE, _cell
from lamo.effect import MetricEffect, fmt_change


def _effect(rel, rel_ci, verdict, p_holm=0.01):
    return MetricEffect("motion_smoothness", "higher", 96, 96, 0.98, 0.98 * (1 + rel), 0.98 * rel,
                        (0.98 * rel_ci[0], 0.98 * rel_ci[1]), rel, rel_ci, p_holm / 8, p_holm, 0.001, 0.001, verdict)


def test_a_small_real_change_never_reads_as_plus_zero():
    e = _effect(0.00041, (0.00027, 0.00055), "improved")  # measured in the demo: motion smoothness +0.04 %
    assert "+0.041 % [+0.027 … +0.055]" in e.sentence() and "+0.0 %" not in e.sentence()
    assert _cell(e) == "+0.041 % [+0.027 … +0.055] ✓"
    assert fmt_change(-0.384, (-0.477, -0.254)) == "-38.4 % [-47.7 … -25.4]" and fmt_change(0.0) == "+0.0 %"


def test_an_interval_excluding_zero_without_a_verdict_is_explained_where_it_appears():
    e = _effect(-0.05, (-0.09, -0.01), "no detectable change", p_holm=0.12)
    assert e.interval_only and "interval excludes 0 but" in e.sentence() and "p = 0.12" in e.sentence()
    assert _cell(e).endswith("· †") and INTERVAL_ONLY_NOTE.startswith("†")
    plain = _effect(-0.05, (-0.09, 0.02), "no detectable change", p_holm=0.4)
    assert not plain.interval_only and "interval excludes 0" not in plain.sentence() and _cell(plain).endswith(" ·")


def test_labels_draw_greek_letters():
    frames = np.zeros((2, 16, 40, 3), np.uint8)
    greek, ascii_ = report.labelled(frames, "MPG λ=3 ρ=0.5"), report.labelled(frames, "MPG ?=3 ?=0.5")
    assert greek[0, :14].any()  # something is drawn
    assert not np.array_equal(greek[0, :14], ascii_[0, :14])  # λ and ρ are not drawn as "?"


def test_sweep_axis_keeps_the_choice_readable_and_marks_it(tmp_path, monkeypatch):
    figs = []
    real = report._save
    monkeypatch.setattr(report, "_save", lambda fig, path: (figs.append(fig), real(fig, path))[1])

    def point(rel, lo, hi):
        return {"physics_error": {"rel": rel, "rel_ci": [lo, hi]}, "detection_rate": {"diff": 0.0, "diff_ci": [-0.01, 0.01]}}
    sweep = {"τ=1": {"1": point(-0.2, -0.3, -0.1), "3": point(-0.4, -0.5, -0.3), "30": point(15.0, 12.0, 18.0)}}
    report.plot_sweep_effects(tmp_path / "s.png", sweep, chosen=3.0, chosen_series="τ=1")
    ax = figs[0].axes[0]
    assert ax.get_yscale() == "symlog"  # +1500 % does not flatten the −40 % region
    assert any("chosen λ = 3" in t.get_text() for t in ax.get_legend().get_texts())
    figs.clear()
    report.plot_sweep_effects(tmp_path / "t.png", {"τ=1": {"1": point(-0.2, -0.3, -0.1)}})
    assert figs[0].axes[0].get_yscale() == "linear"  # small changes stay on a plain axis


def test_animations_carry_their_prompt_as_caption(tmp_path):
    page = report.write_html(tmp_path / "i.html", "t", [
        {"title": "s", "images": [{"src": "media/a.gif", "caption": "prompt 0: “a red ball rolls”"}, "media/b.png"],
         "table": {"header": ["a"], "rows": [["1"]]}, "notes": ["† why"]}]).read_text()
    assert "<figcaption>prompt 0: “a red ball rolls”</figcaption>" in page and "<figcaption>b</figcaption>" in page
    assert page.index("</table>") < page.index("† why")
