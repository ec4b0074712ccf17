"""``lamo explain``: drift and field heatmaps of a video, as an animation and a contact sheet."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="render where the motion readouts look: drift and field heatmaps over a video")
    p.add_argument("video", help="an mp4 (generated or real)")
    p.add_argument("--model", required=True, help="the backbone pipeline whose VAE and text encoder define the latents")
    p.add_argument("--prior", default=None, help="motion prior folder (without it only the drift heatmap is drawn)")
    p.add_argument("--prompt", default=None, help="the video's caption (the prior's condition; default: none)")
    p.add_argument("--out", default="explain", help="output folder (default: explain)")
    p.add_argument("--fps", type=float, default=8.0,
                   help="frames per second of the video (heatmaps.gif plays at half this rate; default: 8)")
    p.set_defaults(func=_explain)


def _explain(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from .._quiet import quiet_loading
    from ..adapters import get_adapter
    from ..explain import drift_heatmap, field_heatmap, render_overlay
    from ..pipelines import pipeline_class
    from ..prior import MotionPrior
    from ..report import side_by_side
    from ..video_io import read_video

    import math

    from ..errors import InputError

    if not (math.isfinite(args.fps) and args.fps > 0):
        raise InputError(f"--fps must be > 0, got {args.fps}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise InputError(f"--out {args.out} is a file, not a folder")
    frames = read_video(args.video)  # (T, H, W, 3)
    from diffusers import DiffusionPipeline

    family = get_adapter(DiffusionPipeline.load_config(args.model)).family
    with quiet_loading():
        pipe = pipeline_class(family).from_pretrained(args.model)
    adapter = get_adapter(pipe)
    with torch.no_grad():
        z = adapter.encode_video(pipe.vae, frames, sample=False)[0]  # (F, C, h, w)
    prior = MotionPrior.from_pretrained(args.prior) if args.prior else None
    tau = prior.config.tau if prior is not None else 2  # both maps over the same (i, i + τ) pairs
    maps, labels = [drift_heatmap(z, tau)], ["drift"]
    if prior is not None:
        pipe.check_motion_prior(prior)
        cond = None
        if args.prompt and pipe.text_encoder is not None:
            cond = adapter.pool_prompt(adapter.encode_prompt(pipe, [args.prompt]))
        maps.append(field_heatmap(prior, z, cond, tau))
        labels.append("field")
    overlays = [render_overlay(frames, m, tau) for m in maps]
    P = overlays[0].shape[0]
    idx = [min(len(frames) - 1, int(round(i * len(frames) / (P + tau)))) for i in range(P)]
    out = Path(args.out)
    gif = side_by_side(out / "heatmaps.gif", [frames[idx]] + overlays, ["video"] + labels, fps=args.fps / 2)
    sheet = np.concatenate([np.concatenate(list(o), axis=1) for o in [frames[idx]] + overlays], axis=0)
    scale = max(1, 256 // frames.shape[1])
    Image.fromarray(sheet).resize((sheet.shape[1] * scale, sheet.shape[0] * scale), Image.NEAREST).save(out / "contact_sheet.png")
    print(f"wrote {gif} and {out / 'contact_sheet.png'}")
    return 0
