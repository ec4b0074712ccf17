"""``lamo explain``: drift and field heatmaps of a video, as an animation and a contact sheet
(:func:`lamo.explain.explain_video`)."""
from __future__ import annotations

import argparse

from ._args import Number


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="render where the motion readouts look: drift and field heatmaps over a video")
    p.add_argument("video", help="an mp4 (generated or real)")
    p.add_argument("--model", required=True, help="the backbone pipeline whose VAE and text encoder define the latents")
    p.add_argument("--prior", default=None, help="motion prior folder (without it only the drift heatmap is drawn)")
    p.add_argument("--prompt", default=None, help="the video's caption (the prior's condition; default: none)")
    p.add_argument("--out", default="explain", help="output folder (default: explain)")
    p.add_argument("--fps", type=Number(float, 0, 1000, low_open=True), default=8.0,
                   help="frames per second of the video (heatmaps.gif plays at half this rate; default: 8)")
    p.set_defaults(func=_explain)


def _explain(args: argparse.Namespace) -> int:
    from ..explain import explain_video

    gif, sheet = explain_video(args.video, args.model, prior=args.prior, prompt=args.prompt, out=args.out,
                               fps=args.fps)
    print(f"wrote {gif} and {sheet}")
    return 0
