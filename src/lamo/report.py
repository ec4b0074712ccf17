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

__all__ = ["side_by_side", "labelled", "plot_metric_bars", "plot_sweep", "write_html", "fmt_mean_std"]


def labelled(frames: np.ndarray, label: str, scale: int = 4) -> np.ndarray:
    """Upscale ``(T, H, W, 3)`` uint8 frames by ``scale`` (nearest) and put ``label`` in a strip on top."""
    import cv2

    arr = to_uint8_frames(frames)
    T, H, W, _ = arr.shape
    big = arr.repeat(scale, axis=1).repeat(scale, axis=2)  # (T, H·s, W·s, 3)
    strip_h = 14
    out = np.zeros((T, H * scale + strip_h, W * scale, 3), np.uint8)
    out[:, strip_h:] = big
    font_scale = 0.35
    text = label
    while text and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)[0][0] > W * scale - 4:
        text = text[:-1]
    for t in range(T):
        cv2.putText(out[t], text, (2, strip_h - 4), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
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


def plot_metric_bars(path: str | Path, metric: str, names: Sequence[str], means: Sequence[float],
                     stds: Sequence[float], reference: float | None = None, better: str = "") -> Path:
    """A bar chart of one metric across variants, with ±1 std error bars and an optional reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(3.5, 0.9 * len(names) + 1.5), 2.8), dpi=110)
    xs = np.arange(len(names))
    means, stds = np.asarray(means, float), np.asarray(stds, float)
    ok = np.isfinite(means)
    ax.bar(xs[ok], means[ok], yerr=np.nan_to_num(stds[ok]), color="#4c72b0", capsize=3)
    for x in xs[~ok]:  # an undefined metric is not a zero: say so instead of drawing a bar
        ax.text(x, 0, "undefined", rotation=90, ha="center", va="bottom", fontsize=7, color="#888")
    if reference is not None and np.isfinite(reference):
        ax.axhline(reference, color="#c44e52", ls="--", lw=1, label="ground truth")
        ax.legend(fontsize=7, loc="best")
    ax.set_xticks(xs, names, rotation=25, ha="right", fontsize=7)
    ax.set_title(f"{metric}" + (f" ({better} is better)" if better else ""), fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_sweep(path: str | Path, xs: Sequence[float], series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
               xlabel: str = "λ", title: str = "") -> Path:
    """Line plots (mean ± std band) of several metrics against a swept value, one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(series)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 2.6), dpi=110, squeeze=False)
    for ax, (name, (m, s)) in zip(axes[0], series.items()):
        m, s = np.asarray(m, float), np.asarray(s, float)
        ax.plot(xs, m, marker="o", color="#4c72b0")
        ax.fill_between(xs, m - s, m + s, alpha=0.2, color="#4c72b0")
        ax.set_xscale("symlog", linthresh=min([x for x in xs if x > 0] or [1.0]))
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def write_html(path: str | Path, title: str, sections: Sequence[Mapping]) -> Path:
    """Write a self-contained page. Each section is a mapping with ``title`` and any of ``text``
    (paragraphs; plain text, escaped), ``table`` (``{"header": [...], "rows": [[...]]}``), ``images``
    (paths relative to the page, shown inline: PNGs and GIFs) and ``json`` (shown pre-formatted)."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s['title'])}</h2>")
        for para in s.get("text", []):
            parts.append(f"<p>{html.escape(para)}</p>")
        if "table" in s:
            parts.append(_table(s["table"]["rows"], s["table"]["header"]))
        if s.get("images"):
            parts.append("<div class='imgs'>" + "".join(
                f"<figure><img src='{html.escape(str(i))}' alt='{html.escape(Path(str(i)).stem)}'>"
                f"<figcaption>{html.escape(Path(str(i)).stem)}</figcaption></figure>" for i in s["images"]) + "</div>")
        if "json" in s:
            parts.append(f"<pre>{html.escape(json.dumps(s['json'], indent=2))}</pre>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
             ".scroll{overflow-x:auto}.imgs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:11px;color:#666}"
             "img{image-rendering:pixelated;max-width:100%}pre{background:#f7f7f7;padding:8px;font-size:11px}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
