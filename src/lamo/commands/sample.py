"""``lamo sample``: sample videos with a LaMo pipeline, sweeping the Motion Prior Guidance scale λ.

The command parses its options into a :class:`lamo.sampling.SampleConfig` (same names) and runs a
:class:`lamo.sampling.SampleRun`, which holds the whole job — the output folder and its resume, sharding over
``torchrun`` / ``accelerate launch`` processes, ``run.json``; see :mod:`lamo.sampling`. Without
``--motion-guidance-scale``, ``--motion-guidance-window``, ``--steps`` or ``--guidance-scale`` it uses what the
prior records (its ``sampling.json``), else defaults, and prints one line naming each value and its source.
"""
from __future__ import annotations

import argparse
import dataclasses

from ._args import COUNT, FRACTION, GIB, NON_NEGATIVE_REAL, SEED, Number, device
from ..sampling import (DEFAULT_FPS, FAMILIES, MAX_FPS, SampleConfig, SampleRun, folder_fingerprint,
                        load_prompt_embeds, read_prompts_file, recipe_differences, save_prompt_embeds)

__all__ = ["register", "run_sample", "save_prompt_embeds", "load_prompt_embeds", "read_prompts_file",
           "folder_fingerprint", "recipe_differences", "DEFAULT_FPS"]

_FROM_PRIOR = "the prior's recorded value (its sampling.json), else"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="sample videos with Motion Prior Guidance (sweep λ over prompts and seeds)",
        description="Sample videos with a LaMo pipeline (CogVideoX or Wan), sweeping the Motion Prior Guidance "
                    "scale λ over prompts and seeds. Writes OUT/<prompt_idx>_<seed>_<λ>.mp4 and OUT/run.json. "
                    "λ, ρ, steps and CFG not given come from the prior's sampling.json, else defaults; the run "
                    "prints and records which.",
        epilog="Models saved without a text encoder take --prompt-embeds FILE.safetensors (tensors 'prompt_embeds' "
               "(N, L, D) and, for CFG, 'negative_prompt_embeds' (N or 1, L, D); write it with "
               "lamo.sampling.save_prompt_embeds).",
    )
    p.add_argument("--model", required=True, help="diffusers pipeline folder or hub id (CogVideoX or Wan)")
    p.add_argument("--family", choices=FAMILIES, default=None,
                   help="backbone family (default: read from the model's model_index.json)")
    p.add_argument("--prior", default=None, help="motion prior folder (MotionPrior.save_pretrained) (default: none)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", action="append", help="a text prompt (repeat for several)")
    src.add_argument("--prompts-file", help="text file, one prompt per line, or a CSV / JSON / JSONL table with a "
                                            "'caption', 'prompt', 'text' or 'prompt_en' column")
    src.add_argument("--prompt-embeds", help="safetensors file of precomputed prompt embeddings "
                                             "(for models saved without a text encoder; see below)")
    p.add_argument("--negative-prompt", default=None, help="negative prompt text (CFG) (default: the pipeline's)")
    p.add_argument("--image", default=None, metavar="PATH",
                   help="image-to-video: the first frame (PNG/JPEG) every video starts from; needs an image-to-video "
                        "model (CogVideoXImageToVideoPipeline, WanImageToVideoPipeline) or Wan 2.2 TI2V-5B")
    p.add_argument("--seeds", type=SEED, nargs="+", default=[0], help="random seeds (default: 0)")
    p.add_argument("--steps", type=COUNT, default=None,
                   help=f"denoising steps (default: {_FROM_PRIOR} the pipeline's, e.g. 50 for CogVideoX)")
    p.add_argument("--guidance-scale", type=NON_NEGATIVE_REAL, default=None,
                   help=f"classifier-free guidance scale (default: {_FROM_PRIOR} the pipeline's)")
    g = p.add_argument_group("Motion Prior Guidance (the pipeline's motion_guidance_* arguments)")
    g.add_argument("--motion-guidance-scale", type=NON_NEGATIVE_REAL, nargs="+", action="extend", default=None, metavar="LAMBDA",
                   help=f"λ ≥ 0; repeat or list several to sweep (default: {_FROM_PRIOR} 1.0 with --prior, 0 without)")
    g.add_argument("--motion-guidance-window", type=FRACTION, default=None, metavar="RHO",
                   help=f"ρ ∈ [0, 1]: guide steps s ≥ (1 − ρ)·S (default: {_FROM_PRIOR} 0.8)")
    g.add_argument("--motion-guidance-mode", choices=("output", "latent"), default="output",
                   help="correct the model output (the method) or x_t (ablation) (default: output)")
    g.add_argument("--motion-guidance-reduction", choices=("sum", "element_mean"), default="sum",
                   help="L_guide summed per sample (λ means the same at any size) or one element mean (the authors' "
                        "release) (default: sum)")
    g.add_argument("--motion-guidance-window-rounding", choices=("ceil", "floor", "release"), default="ceil",
                   help="first guided step ⌈(1 − ρ)·S⌉, ⌊(1 − ρ)·S⌋, or the authors' int((1.0 − ρ)·S) in floating "
                        "point (release: step 9 of 50 at ρ = 0.8) (default: ceil)")
    g.add_argument("--motion-guidance-stop-gradient", action="store_true",
                   help="one-sided residual: the prior's prediction is a fixed target (default: off)")
    g.add_argument("--motion-guidance-schedule", choices=("constant", "noise"), default="constant",
                   help="λ at every guided step, or λ·√(1 − ᾱ_t) (λ·σ_t for flow models) (default: constant)")
    g.add_argument("--motion-guidance-more-priors", nargs="+", default=[], metavar="PATH",
                   help="further prior folders guiding beside --prior, their losses summed under one λ (default: none)")
    p.add_argument("--release-sampler", action="store_true",
                   help="sample as the authors' release does (CogVideoX): DPM scheduler with trailing timesteps, "
                        "first-order steps, dynamic CFG; pair it with --motion-guidance-reduction element_mean "
                        "--motion-guidance-window-rounding release (default: off, the model's own scheduler)")
    p.add_argument("--frames", type=COUNT, default=None, help="video frames (default: the model's config, else the pipeline's)")
    p.add_argument("--height", type=COUNT, default=None, help="video height in pixels (default: the model's config, else the pipeline's)")
    p.add_argument("--width", type=COUNT, default=None, help="video width in pixels (default: the model's config, else the pipeline's)")
    p.add_argument("--max-sequence-length", type=COUNT, default=None, help="prompt tokens (default: the model's config, else the pipeline's)")
    p.add_argument("--fps", type=Number(float, 1, MAX_FPS), default=None,
                   help="frames per second of the mp4s, a whole number from 1 to 1000 (default: CogVideoX "
                        f"{DEFAULT_FPS['cogvideox']}, Wan {DEFAULT_FPS['wan']}, HunyuanVideo "
                        f"{DEFAULT_FPS['hunyuanvideo']}, LTX-Video {DEFAULT_FPS['ltx']})")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                   help="model dtype (default: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--device", type=device, default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--prior-dtype", choices=("float32", "bfloat16"), default=None,
                   help="dtype the prior runs in (default: bfloat16 when the model runs in bf16, else float32; "
                        "bf16 was 1.4× faster than fp32 on an H200 — see benchmarks/README.md)")
    p.add_argument("--activation-gib", type=GIB, default=2.0,
                   help="most GiB of prior activations held at once during a guided step (default: 2; "
                        "lower it on a small GPU, raise it to put more frame pairs through the prior per call)")
    mem = p.add_argument_group("memory on one GPU (diffusers' switches, as the authors' release samples)")
    mem.add_argument("--cpu-offload", choices=("none", "model", "sequential"), default="none",
                     help="keep the weights on the CPU and move each model (model) or layer (sequential) to the GPU "
                          "while it runs; needs a GPU and accelerate; the same video (default: none)")
    mem.add_argument("--vae-slicing", action="store_true",
                     help="decode the videos of a batch one at a time; the same video (default: off)")
    mem.add_argument("--vae-tiling", action="store_true",
                     help="decode in overlapping spatial tiles: less memory for large videos, blended seams above the "
                          "VAE's tile size (default: off)")
    p.add_argument("--no-guide-loss", action="store_true",
                   help="measure L_guide only at guided steps (saves one prior forward per unguided step) "
                        "(default: measured at every step)")
    p.add_argument("--out", default="samples",
                   help="output folder; one sampler at a time (OUT/.lamo-sample.lock) (default: samples)")
    p.add_argument("--skip-existing", action="store_true",
                   help="resume: keep the videos in OUT that were made exactly as asked now (same model, prior, "
                        "λ, ρ, guidance options, steps, CFG, size, prompt, seed, scheduler, dtype; see run.json) and "
                        "make the others; earlier videos not asked for now stay recorded in run.json's other_videos "
                        "(default: off)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run in OUT (its videos are deleted first); without it, or "
                        "--skip-existing, an OUT holding a run.json is refused (default: off)")
    p.set_defaults(func=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    """Run ``lamo sample`` with parsed ``args``: :class:`~lamo.sampling.SampleRun` of the same options."""
    names = {f.name for f in dataclasses.fields(SampleConfig)}
    SampleRun(SampleConfig(**{k: v for k, v in vars(args).items() if k in names})).run()
    return 0
