"""Sampling cost: baseline vs Motion Prior Guidance vs the FlowMo peer (style and release), measured in one run.

Random weights at a real architecture's size are enough for timing (docs/design.md §5). For each variant
the script samples the same latents (``output_type="latent"``: the VAE is not part of the question)
and records wall time per video and, on CUDA, peak allocated memory. Every variant first runs a short
warm-up call; then the timed videos go round robin (baseline, MPG…, FlowMo, baseline, …) so that a
drift in clocks or machine load falls on all variants alike. A variant that runs out of GPU memory is
reported as such and dropped. FlowMo rows: ``flowmo`` — ``FlowMoGuidance(variant="style")``, η = 0.1,
``--flowmo-steps`` (30 % of S) guided; ``flowmo_release`` — ``variant="release"`` (Adam lr 1e-3, the
first ``round(12·S/50)`` steps, checkpointed branches, no recompute).

    python benchmarks/bench_sampling.py --arch demo                       # the shipped toy backbone, CPU
    python benchmarks/bench_sampling.py --arch tiny                       # a 1-layer random CogVideoX, CPU
    python benchmarks/bench_sampling.py --arch cogvideox-2b --device cuda --dtype bfloat16   # 49×480×720, 50 steps
    python benchmarks/bench_sampling.py --arch wan-1.3b --device cuda --dtype bfloat16       # 81×480×832, 50 steps
    python benchmarks/bench_sampling.py --arch ltx-2b --device cuda --dtype bfloat16         # 121×512×768, 50 steps
    python benchmarks/bench_sampling.py --arch hunyuanvideo-13b --device cuda --dtype bfloat16  # 129×720×1280

Writes ``benchmarks/results/sampling_<arch>_<device>.json`` (device, versions, command, date).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

# Transformer configs of the released models (diffusers' config.json), and the sampling setting of §5.
ARCHS = {
    "cogvideox-2b": dict(transformer=dict(num_attention_heads=30, attention_head_dim=64, in_channels=16, out_channels=16,
                                          time_embed_dim=512, text_embed_dim=4096, num_layers=30, sample_width=90,
                                          sample_height=60, sample_frames=49, patch_size=2, temporal_compression_ratio=4,
                                          max_text_seq_length=226),
                         snr_shift=3.0, frames=49, height=480, width=720, steps=50),
    "cogvideox-5b": dict(transformer=dict(num_attention_heads=48, attention_head_dim=64, in_channels=16, out_channels=16,
                                          time_embed_dim=512, text_embed_dim=4096, num_layers=42, sample_width=90,
                                          sample_height=60, sample_frames=49, patch_size=2, temporal_compression_ratio=4,
                                          max_text_seq_length=226, use_rotary_positional_embeddings=True),
                         snr_shift=1.0, frames=49, height=480, width=720, steps=50),
    # Wan 2.1 T2V 1.3B (81×480×832 → 21×60×104 latents, UniPC flow sigmas, shift 3; CFG = two calls).
    "wan-1.3b": dict(family="wan", transformer=dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128,
                                                    in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
                                                    ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                                                    qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024),
                     text_len=512, frames=81, height=480, width=832, steps=50),
    "wan-tiny": dict(family="wan", transformer=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                                    in_channels=16, out_channels=16, text_dim=64, freq_dim=32,
                                                    ffn_dim=32, num_layers=1, cross_attn_norm=True,
                                                    qk_norm="rms_norm_across_heads", rope_max_seq_len=32),
                     text_len=16, frames=9, height=64, width=64, steps=10),
    # HunyuanVideo 13B (diffusers' HunyuanVideoTransformer3DModel of hunyuanvideo-community/HunyuanVideo): 129×720×1280
    # → 33×90×160 latents, patch 2 (118,800 tokens); guidance-distilled, so one transformer call per step;
    # FlowMatchEuler, shift 7; Llama prompts of 256 tokens, CLIP pooled 768.
    "hunyuanvideo-13b": dict(family="hunyuanvideo", vae=(4, 8),
                             transformer=dict(in_channels=16, out_channels=16, num_attention_heads=24,
                                              attention_head_dim=128, num_layers=20, num_single_layers=40,
                                              num_refiner_layers=2, mlp_ratio=4.0, patch_size=2, patch_size_t=1,
                                              qk_norm="rms_norm", guidance_embeds=True, text_embed_dim=4096,
                                              pooled_projection_dim=768, rope_theta=256.0, rope_axes_dim=(16, 56, 56)),
                             text_len=256, frames=129, height=720, width=1280, steps=50, shift=7.0),
    # LTX-Video 2B (0.9.x): 121×512×768 (its 768×512 at 24 fps) → 16×16×24 latents of 128 channels (VAE 8× in time,
    # 32× in space), packed to 6,144 tokens; CFG batched [uncond, cond]; T5 prompts of 128 tokens.
    "ltx-2b": dict(family="ltx", vae=(8, 32),
                   transformer=dict(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1,
                                    num_attention_heads=32, attention_head_dim=64, cross_attention_dim=2048,
                                    num_layers=28, caption_channels=4096),
                   text_len=128, frames=121, height=512, width=768, steps=50),
    "tiny": dict(transformer=dict(num_attention_heads=2, attention_head_dim=16, in_channels=16, out_channels=16,
                                  time_embed_dim=32, text_embed_dim=64, num_layers=1, sample_width=8, sample_height=8,
                                  sample_frames=13, patch_size=2, temporal_compression_ratio=4, max_text_seq_length=16),
                 snr_shift=3.0, frames=13, height=64, width=64, steps=10),
}

# 1-layer random versions of the two above, for the CPU tests
ARCHS["hunyuanvideo-tiny"] = dict(ARCHS["hunyuanvideo-13b"], text_len=16, frames=9, height=64, width=64, steps=10,
                                  transformer=dict(ARCHS["hunyuanvideo-13b"]["transformer"], num_attention_heads=2,
                                                   attention_head_dim=12, num_layers=1, num_single_layers=1,
                                                   num_refiner_layers=1, text_embed_dim=64, pooled_projection_dim=8,
                                                   rope_axes_dim=(4, 4, 4)))
ARCHS["ltx-tiny"] = dict(ARCHS["ltx-2b"], text_len=16, frames=17, height=128, width=128, steps=10,
                         transformer=dict(ARCHS["ltx-2b"]["transformer"], in_channels=16, out_channels=16,
                                          num_attention_heads=2, attention_head_dim=16, cross_attention_dim=32,
                                          num_layers=1, caption_channels=64))


def median(seconds: list[float]) -> float:
    """The middle timing (the upper of the two middle ones for an even count) — what every script reports."""
    return sorted(seconds)[len(seconds) // 2]


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model name (from /proc/cpuinfo where there is one) and thread count."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} CPU, {torch.get_num_threads()} threads"


def build(arch: str, device: str, dtype: torch.dtype):
    """A latent-only LaMo CogVideoX pipeline (random weights or the demo backbone) and its call kwargs."""
    from diffusers import CogVideoXDDIMScheduler, CogVideoXTransformer3DModel

    from lamo.pipelines import LaMoCogVideoXPipeline

    if arch == "demo":
        from lamo.demo.run import DEFAULT_BACKBONE

        pipe = LaMoCogVideoXPipeline.from_pretrained(DEFAULT_BACKBONE, torch_dtype=dtype)
        meta = json.loads((DEFAULT_BACKBONE / "lamo_demo.json").read_text())["preset"]
        t = meta["temporal_compression"]
        kwargs = dict(prompt=["a red ball is thrown to the right and bounces on the floor"], height=meta["size"],
                      width=meta["size"], num_frames=(meta["frames"] // t - 1) * t + 1, num_inference_steps=25,
                      max_sequence_length=meta["max_text_len"])
    elif ARCHS[arch].get("family") == "wan":
        from diffusers import UniPCMultistepScheduler, WanTransformer3DModel

        from lamo.pipelines import LaMoWanPipeline

        a = ARCHS[arch]
        with torch.device(device):  # random init on the device: seconds for billions of weights, not minutes
            transformer = WanTransformer3DModel(**a["transformer"]).to(dtype)
        scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                            num_train_timesteps=1000, flow_shift=3.0)
        pipe = LaMoWanPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=transformer, scheduler=scheduler)
        L, D = a["text_len"], a["transformer"]["text_dim"]
        g = torch.Generator().manual_seed(0)
        kwargs = dict(prompt_embeds=torch.randn(1, L, D, generator=g).to(device, dtype),
                      negative_prompt_embeds=torch.randn(1, L, D, generator=g).to(device, dtype),
                      height=a["height"], width=a["width"], num_frames=a["frames"], num_inference_steps=a["steps"])
    elif ARCHS[arch].get("family") in ("hunyuanvideo", "ltx"):
        pipe, kwargs = _build_flow_family(ARCHS[arch], device, dtype)
    else:
        a = ARCHS[arch]
        with torch.device(device):
            transformer = CogVideoXTransformer3DModel(**a["transformer"]).to(dtype)
        scheduler = CogVideoXDDIMScheduler(prediction_type="v_prediction", timestep_spacing="trailing",
                                           rescale_betas_zero_snr=True, snr_shift_scale=a["snr_shift"],
                                           beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                           clip_sample=False, set_alpha_to_one=True)
        pipe = LaMoCogVideoXPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=transformer,
                                     scheduler=scheduler)
        L, D = a["transformer"]["max_text_seq_length"], a["transformer"]["text_embed_dim"]
        g = torch.Generator().manual_seed(0)
        kwargs = dict(prompt_embeds=torch.randn(1, L, D, generator=g).to(device, dtype),
                      negative_prompt_embeds=torch.randn(1, L, D, generator=g).to(device, dtype),
                      height=a["height"], width=a["width"], num_frames=a["frames"], num_inference_steps=a["steps"],
                      max_sequence_length=L)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    kwargs.setdefault("guidance_scale", 6.0)
    kwargs.update(output_type="latent")
    return pipe, kwargs


def _build_flow_family(a: dict, device: str, dtype: torch.dtype):
    """A latent-only LaMo HunyuanVideo or LTX-Video pipeline with random weights, and its call kwargs (no VAE:
    the pipelines read only its compression factors, given here as the released models')."""
    from diffusers import FlowMatchEulerDiscreteScheduler, HunyuanVideoTransformer3DModel, LTXVideoTransformer3DModel

    from lamo.pipelines import LaMoHunyuanVideoPipeline, LaMoLTXPipeline

    t, s = a["vae"]
    L, g = a["text_len"], torch.Generator().manual_seed(0)
    hunyuan = a["family"] == "hunyuanvideo"
    with torch.device(device):
        transformer = (HunyuanVideoTransformer3DModel if hunyuan else LTXVideoTransformer3DModel)(**a["transformer"])
    transformer.to(dtype)
    D = a["transformer"]["text_embed_dim" if hunyuan else "caption_channels"]
    embeds = [torch.randn(1, L, D, generator=g).to(device, dtype) for _ in range(2)]
    kwargs = dict(height=a["height"], width=a["width"], num_frames=a["frames"], num_inference_steps=a["steps"],
                  max_sequence_length=L)
    if hunyuan:
        pipe = LaMoHunyuanVideoPipeline(text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None,
                                        vae=None, transformer=transformer,
                                        scheduler=FlowMatchEulerDiscreteScheduler(shift=a["shift"]))
        pipe.vae_scale_factor_temporal, pipe.vae_scale_factor_spatial = t, s
        pooled = torch.randn(1, a["transformer"]["pooled_projection_dim"], generator=g).to(device, dtype)
        kwargs.update(prompt_embeds=embeds[0], pooled_prompt_embeds=pooled,
                      prompt_attention_mask=torch.ones(1, L, device=device, dtype=dtype))
    else:
        scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
                                                    base_image_seq_len=1024, max_image_seq_len=4096,
                                                    shift_terminal=0.1)
        pipe = LaMoLTXPipeline(text_encoder=None, tokenizer=None, vae=None, transformer=transformer,
                               scheduler=scheduler)
        pipe.vae_temporal_compression_ratio, pipe.vae_spatial_compression_ratio = t, s
        kwargs.update(prompt_embeds=embeds[0], negative_prompt_embeds=embeds[1], guidance_scale=3.0)  # its default
    return pipe, kwargs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=[*ARCHS, "demo"], default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--prior-preset", default="base", help="MotionPrior preset (base ≈ 10M parameters)")
    p.add_argument("--prior-dtype", default=None, choices=["float32", "bfloat16"], help="default: --dtype")
    p.add_argument("--repeats", type=int, default=3, help="timed videos per variant")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the architecture's, 50 at real size)")
    p.add_argument("--warmup-steps", type=int, default=3,
                   help="steps of the untimed warm-up call before each variant (0: a full untimed video)")
    p.add_argument("--flowmo-steps", type=int, default=None, help="guided steps of the peer (default: 30 %% of S)")
    p.add_argument("--no-flowmo", action="store_true", help="skip the FlowMo peer (it can run out of memory)")
    p.add_argument("--flowmo-variants", nargs="+", default=["style", "release"], choices=["style", "release"],
                   help="FlowMoGuidance variants to time (rows flowmo and flowmo_release)")
    p.add_argument("--activation-gib", nargs="+", default=["2"],
                   help="MPG's motion_guidance_activation_gib; several values give one MPG row each ('none': one call)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    from lamo import MotionPrior
    from lamo.peers import FlowMoGuidance, release_steps

    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    pipe, kwargs = build(args.arch, args.device, dtype)
    if args.steps is not None:
        kwargs["num_inference_steps"] = args.steps
    adapter = pipe.adapter
    C, D = adapter.latent_channels(pipe.transformer), adapter.text_embed_dim(pipe.transformer)
    prior = MotionPrior.from_preset(args.prior_preset, latent_channels=C, text_embed_dim=D, backbone=adapter.family)
    if adapter.family not in ("cogvideox", "wan") and not args.no_flowmo:
        print(f"the FlowMo peer knows CogVideoX and Wan pipelines only: no FlowMo rows for {adapter.family}", flush=True)
        args.no_flowmo = True
    torch.nn.init.normal_(prior.conv_out.weight, std=1e-3)  # a non-zero field, as after training
    prior.to(args.device, getattr(torch, args.prior_dtype or args.dtype))
    S = kwargs["num_inference_steps"]
    flowmo_steps = args.flowmo_steps if args.flowmo_steps is not None else round(0.3 * S)
    release = release_steps(S)
    cuda = args.device.startswith("cuda")

    def call(name: str, seed: int, steps: int, **extra):
        kw = dict(kwargs, num_inference_steps=steps)
        if name == "flowmo":
            with FlowMoGuidance(pipe, scale=0.1, steps=min(flowmo_steps, steps), variant="style"):
                pipe(generator=torch.Generator(args.device).manual_seed(seed), **kw)
        elif name == "flowmo_release":
            with FlowMoGuidance(pipe, scale=1e-3, steps=min(release, steps), variant="release"):
                pipe(generator=torch.Generator(args.device).manual_seed(seed), **kw)
        else:
            pipe(generator=torch.Generator(args.device).manual_seed(seed), **kw, **extra)

    import diffusers

    results: dict = {}
    record = {
        "arch": args.arch, "device": device_name(args.device), "dtype": args.dtype, "prior_preset": args.prior_preset,
        "prior_dtype": args.prior_dtype or args.dtype, "mpg_activation_gib": args.activation_gib,
        "repeats": args.repeats, "warmup_steps": args.warmup_steps,
        "prior_parameters_m": prior.num_parameters_m(), "steps": S, "flowmo_guided_steps": flowmo_steps,
        "flowmo_release_guided_steps": release,
        "call": {k: (list(v.shape) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()},
        "results": results, "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                                         "python": sys.version.split()[0]},
        "command": "python benchmarks/bench_sampling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"), "complete": False,
    }
    out = Path(args.out or Path(__file__).parent / "results" / f"sampling_{args.arch}_{'cuda' if cuda else 'cpu'}.json")
    out.parent.mkdir(parents=True, exist_ok=True)

    variants: dict[str, dict] = {"baseline": {}}
    for gib in args.activation_gib:
        budget = None if gib.lower() == "none" else float(gib)
        name = "mpg" if len(args.activation_gib) == 1 else "mpg@one_call" if budget is None else f"mpg@{gib}GiB"
        variants[name] = dict(motion_prior=prior, motion_guidance_scale=1.0, motion_guidance_window=0.8,
                              motion_guidance_activation_gib=budget)
    if not args.no_flowmo:
        for variant in dict.fromkeys(args.flowmo_variants):
            variants["flowmo" if variant == "style" else "flowmo_release"] = {}
    times: dict[str, list[float]] = {name: [] for name in variants}
    peaks: dict[str, float | None] = {name: None for name in variants}

    def write() -> None:
        """Rewrite the results file: a run cut short keeps what it measured."""
        base = times["baseline"] and median(times["baseline"])
        for name in variants:
            if times[name]:
                med = median(times[name])
                results[name] = r = {"seconds_per_video": med, "all_seconds": times[name], "peak_gib": peaks[name]}
                if base:
                    r["time_vs_baseline"] = med / base
                if peaks[name] is not None and peaks["baseline"] is not None:
                    r["extra_peak_gib"] = peaks[name] - peaks["baseline"]
        out.write_text(json.dumps(record, indent=2))

    def attempt(name: str, seed: int, steps: int) -> float | None:
        """Seconds of one call; ``None`` (and the variant dropped) when it runs out of memory."""
        try:
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            call(name, seed, steps, **variants[name])
            if cuda:
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated() / 2**30
                peaks[name] = max(peaks[name] or 0.0, peak)
            return time.perf_counter() - t0
        except torch.OutOfMemoryError as e:
            if name == "baseline":
                raise
            results[name] = {"error": f"out of memory: {str(e).splitlines()[0]}"}
            print(f"{name:>12}: out of memory", flush=True)
            del variants[name]
            torch.cuda.empty_cache()
            return None

    for name in list(variants):  # warm-up: kernels chosen, allocator grown
        attempt(name, 0, args.warmup_steps or S)
    write()
    for r in range(args.repeats):  # round robin: drift in clocks or load falls on every variant alike
        for name in list(variants):
            seconds = attempt(name, r + 1, S)
            if seconds is not None:
                times[name].append(seconds)
                print(f"{name:>12}: {seconds:.3f} s/video" + (f", peak {peaks[name]:.2f} GiB" if cuda else ""),
                      flush=True)
            write()
    record["complete"] = True
    write()
    for name, r in results.items():
        if "time_vs_baseline" in r:
            print(f"{name:>12}: ×{r['time_vs_baseline']:.3f} time (median of {len(r['all_seconds'])})"
                  + (f", +{r['extra_peak_gib']:.2f} GiB" if "extra_peak_gib" in r else ""))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
