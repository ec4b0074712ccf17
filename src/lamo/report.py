"""Reports people look at: side-by-side animations, metric plots, and one self-contained HTML page.

Everything here takes plain arrays and numbers, so any command (the demo, ``lamo eval``, the
benchmarks) can build a report without knowing where the numbers came from.
"""
from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .video_io import to_uint8_frames, write_gif

__all__ = ["side_by_side", "labelled", "plot_forest", "plot_sweep_effects", "write_html", "fmt_mean_std"]


def _label_font(size: int):
    """DejaVu Sans (shipped with matplotlib: draws λ, ρ, η, τ and every other Greek letter), else PIL's own."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


def labelled(frames: np.ndarray, label: str, scale: int = 4) -> np.ndarray:
    """Upscale ``(T, H, W, 3)`` uint8 frames by ``scale`` (nearest) and put ``label`` in a strip on top.

    The label is drawn in DejaVu Sans, so Greek knobs read as written ("MPG λ=3 ρ=0.5"); a label wider
    than the tile is cut with "…"."""
    from PIL import Image, ImageDraw

    arr = to_uint8_frames(frames)
    T, H, W, _ = arr.shape
    big = arr.repeat(scale, axis=1).repeat(scale, axis=2)  # (T, H·s, W·s, 3)
    strip_h = 14
    font = _label_font(10)
    strip = Image.new("RGB", (W * scale, strip_h))
    draw = ImageDraw.Draw(strip)
    text = label
    while text and draw.textlength(text, font=font) > W * scale - 4:
        text = text[:-2] + "…" if len(text) > 1 else ""
    draw.text((2, strip_h // 2), text, fill=(255, 255, 255), font=font, anchor="lm")
    out = np.zeros((T, H * scale + strip_h, W * scale, 3), np.uint8)
    out[:, :strip_h] = np.asarray(strip)
    out[:, strip_h:] = big
    return out


def side_by_side(path: str | Path, clips: Sequence[np.ndarray], labels: Sequence[str], fps: float = 8.0,
                 scale: int = 4, gap: int = 4) -> Path:
    """One looping GIF with ``clips`` (each ``(T, H, W, 3)``) next to each other, each under its label."""
    if len(clips) != len(labels) or not clips:
        raise ValueError("side_by_side needs one label per clip and at least one clip")
    tiles = [labelled(c, lab, scale) for c, lab in zip(clips, labels)]
    T = max(t.shape[0] for t in tiles)
    tiles = [np.concatenate([t, np.repeat(t[-1:], T - t.shape[0], 0)]) if t.shape[0] < T else t for t in tiles]
    sep = np.full((T, tiles[0].shape[1], gap, 3), 60, np.uint8)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [sep, t]
    return write_gif(path, np.concatenate(row, axis=2), fps=fps)


def fmt_mean_std(mean: float, std: float | None = None, digits: int = 3) -> str:
    """``"0.123 ± 0.045"``; ``"–"`` for NaN."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    s = f"{mean:.{digits}g}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        s += f" ± {std:.{max(1, digits - 1)}g}"
    return s


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


#: Verdict -> colour in the effect plots.
VERDICT_COLOURS = {"improved": "#2a9d4b", "worsened": "#c44e52", "no detectable change": "#7f7f7f"}


def plot_forest(path: str | Path, effects: Mapping[str, Mapping[str, object]], title: str = "") -> Path:
    """A forest plot: one panel per metric, one row per comparison, the relative change (%) and its 95 %
    interval, coloured by verdict. ``effects``: comparison → metric → :class:`lamo.effect.MetricEffect`."""
    plt = _pyplot()
    comps = list(effects)
    metrics = list(next(iter(effects.values()))) if effects else []
    cols = min(4, max(1, len(metrics)))  # at most 4 panels a row, so the page shows them at a readable size
    nrows = -(-max(1, len(metrics)) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.4 * cols + 3.0, nrows * (0.42 * len(comps) + 1.3) + 0.3),
                             dpi=110, sharey=True, squeeze=False)
    ys = np.arange(len(comps))[::-1]
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    for ax, m in zip(axes.flat, metrics):
        for y, c in zip(ys, comps):
            e = effects[c][m]
            if not math.isfinite(e.rel):
                ax.text(0, y, "n/a", ha="center", va="center", fontsize=7, color="#888")
                continue
            lo, hi = 100 * e.rel_ci[0], 100 * e.rel_ci[1]
            colour = VERDICT_COLOURS.get(e.verdict, "#7f7f7f")
            ax.errorbar(100 * e.rel, y, xerr=[[max(0.0, 100 * e.rel - lo)], [max(0.0, hi - 100 * e.rel)]], fmt="o",
                        color=colour, ms=4, capsize=2, lw=1.2)
        ax.axvline(0, color="#333", lw=0.8)
        ax.set_title(f"{m}\n({e.better} is better)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("change, %", fontsize=7)
    for row in axes:
        row[0].set_yticks(ys, comps, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_sweep_effects(path: str | Path, sweep: Mapping[str, Mapping[str, Mapping[str, Mapping]]], title: str = "",
                       xlabel: str = "λ", chosen: float | None = None, chosen_series: str | None = None) -> Path:
    """Validation effects against a swept knob: the composite physics error's relative change (%) and
    the detection rate's difference, each with its 95 % interval, one line per series.
    ``sweep``: series → knob value (str) → metric → ``{"rel", "rel_ci", "diff", "diff_ci"}``.

    The change axis is linear within ±100 % and logarithmic beyond (symlog), so a λ that blows up (+1500 %)
    does not flatten the region where the choice is made. ``chosen``: the knob value chosen (a dashed line
    and a ring on ``chosen_series``' point)."""
    plt = _pyplot()
    panels = [("physics_error", "rel", "composite physics error, change %", 100.0),
              ("detection_rate", "diff", "detection rate, difference", 1.0)]
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.2), dpi=110, squeeze=False)
    for ax, (metric, key, label, k) in zip(axes[0], panels):
        drawn, top = False, 0.0
        for i, (series, points) in enumerate(sweep.items()):
            xs = sorted(points, key=float)
            x = np.array([float(v) for v in xs]) * (1 + 0.04 * i)  # small offset so intervals do not overlap
            val = np.array([k * points[v][metric][key] for v in xs], float)
            ci = np.array([[k * c for c in points[v][metric][key + "_ci"]] for v in xs], float)
            line = ax.errorbar(x, val, yerr=[np.nan_to_num(np.maximum(0, val - ci[:, 0])),
                                             np.nan_to_num(np.maximum(0, ci[:, 1] - val))],
                               marker="o", ms=4, capsize=2, label=series)
            drawn = drawn or bool(np.isfinite(val).any())
            top = max([top, *np.abs(ci[np.isfinite(ci)])])
            if chosen is not None and series == chosen_series:
                at = [j for j, v in enumerate(xs) if math.isclose(float(v), chosen)]
                if at and math.isfinite(val[at[0]]):
                    ax.plot(x[at[0]], val[at[0]], "o", ms=10, mfc="none", mec=line[0].get_color(), mew=1.5)
        ax.axhline(0, color="#333", lw=0.8)
        if drawn:  # (a sweep too small for any interval draws nothing to put on a log axis)
            ax.set_xscale("log")
        if key == "rel" and top > 100:
            ax.set_yscale("symlog", linthresh=100)
            ax.set_ylabel("linear within ±100 %, log beyond", fontsize=7)
        if chosen is not None:
            ax.axvline(chosen, color="#2a9d4b", lw=1, ls="--", label=f"chosen {xlabel} = {chosen:g}")
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _figure(item) -> str:
    """``<figure>`` of an image path (captioned by its file name) or ``{"src": path, "caption": text}``."""
    src, caption = (item["src"], item.get("caption", "")) if isinstance(item, Mapping) else (item, "")
    src = str(src)
    caption = caption or Path(src).stem
    return (f"<figure><img src='{html.escape(src)}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def write_html(path: str | Path, title: str, sections: Sequence[Mapping]) -> Path:
    """Write a self-contained page. Each section is a mapping with ``title`` and any of ``text``
    (paragraphs; plain text, escaped), ``table`` (``{"header": [...], "rows": [[...]]}``), ``notes``
    (paragraphs shown under the table), ``images`` (paths relative to the page, or ``{"src": path,
    "caption": text}``, shown inline: PNGs and GIFs; captioned by the file name when no caption is given)
    and ``json`` (shown pre-formatted)."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s['title'])}</h2>")
        for para in s.get("text", []):
            parts.append(f"<p>{html.escape(para)}</p>")
        if "table" in s:
            parts.append(_table(s["table"]["rows"], s["table"]["header"]))
        for para in s.get("notes", []):
            parts.append(f"<p class='note'>{html.escape(para)}</p>")
        if s.get("images"):
            parts.append("<div class='imgs'>" + "".join(_figure(i) for i in s["images"]) + "</div>")
        if "json" in s:
            parts.append(f"<pre>{html.escape(json.dumps(s['json'], indent=2))}</pre>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right;white-space:nowrap}th{background:#f3f3f3}td:first-child{text-align:left}"
             ".scroll{overflow-x:auto}.imgs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:11px;color:#666}"
             ".note{font-size:13px;color:#444}figcaption{max-width:60em}"
             "img{image-rendering:pixelated;max-width:100%}pre{background:#f7f7f7;padding:8px;font-size:11px}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
