"""``lamo settings PRIOR``: show, or record, the sampling settings a motion prior was validated at.

A prior folder's ``sampling.json`` (:func:`lamo.prior.write_sampling_settings`) holds the λ, ρ, denoising steps and
classifier-free guidance scale chosen for it on validation prompts, and what chose them; ``lamo sample --prior`` and
``pipe(..., motion_prior=...)`` use them unless told otherwise.
"""
from __future__ import annotations

import argparse

from ._args import COUNT, FRACTION, NON_NEGATIVE_REAL

#: option → the pipeline call argument it records (the same names as ``lamo sample``'s options)
_OPTIONS = {
    "--motion-guidance-scale": ("motion_guidance_scale", NON_NEGATIVE_REAL, "Motion Prior Guidance scale λ ≥ 0"),
    "--motion-guidance-window": ("motion_guidance_window", FRACTION, "guidance window ρ ∈ [0, 1] (steps s ≥ (1 − ρ)·S)"),
    "--steps": ("num_inference_steps", COUNT, "denoising steps ≥ 1"),
    "--guidance-scale": ("guidance_scale", NON_NEGATIVE_REAL, "classifier-free guidance scale"),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "settings", help="show or record the sampling settings a motion prior was validated at (sampling.json)",
        description="Without values: print the prior's recorded settings (sampling.json) and what chose them. With "
                    "values and --source: record them, replacing any earlier record — e.g. the λ your own sweep on "
                    "validation prompts chose. `lamo sample --prior PRIOR` then uses them unless told otherwise.",
        epilog="example: lamo settings runs/prior --motion-guidance-scale 1 --motion-guidance-window 0.8 --steps 50 "
               "--guidance-scale 6 --source \"lowest validation VideoPhy2 error among λ 0, 0.3, 1, 3 on 64 prompts\"")
    p.add_argument("prior", help="motion prior folder (MotionPrior.save_pretrained's)")
    for flag, (_, kind, text) in _OPTIONS.items():
        p.add_argument(flag, type=kind, default=None, help=f"{text} to record (default: not recorded)")
    p.add_argument("--source", default=None,
                   help="one sentence saying what chose these values (needed to record them; default: none)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..errors import InputError, MissingInputError
    from ..prior import read_sampling_settings, write_sampling_settings

    folder = Path(args.prior)
    if not (folder / "config.json").is_file():
        raise MissingInputError(f"{folder} is not a motion prior folder (no config.json): pass the folder "
                                "MotionPrior.save_pretrained or `lamo train prior` wrote")
    given = {key: getattr(args, flag[2:].replace("-", "_")) for flag, (key, _, _) in _OPTIONS.items()}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        if args.source is not None:
            raise InputError("--source says what chose the values to record: pass the values too "
                             f"({', '.join(_OPTIONS)})")
        record = read_sampling_settings(folder)
        if record is None:
            print(f"{folder} records no sampling settings: `lamo sample` would use λ 1, ρ 0.8 and the pipeline's own "
                  "steps and guidance scale, none of them validated. Record the ones your validation chose with "
                  f"`lamo settings {folder} --motion-guidance-scale … --source …`.")
        else:
            print(json.dumps(record, indent=2, ensure_ascii=False))
        return 0
    if not args.source:
        raise InputError("pass --source: one sentence saying what chose these values (it travels with the prior)")
    path = write_sampling_settings(folder, given, args.source)
    print(f"wrote {path}: " + ", ".join(f"{k}={v:g}" for k, v in given.items()))
    return 0
