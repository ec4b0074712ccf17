"""What one guided step costs at a real backbone's size: MPG vs the backbone step vs FlowMo (style and release).

Three kinds of number, each labelled in the results file:

* **counted** (any machine, exact, no compute): floating-point operations of one CFG denoising step of
  the transformer, of one MPG step (x̂0, the prior over every τ-pair, the input gradient) and of the
  extra work of a FlowMo step through the transformer, counted with ``torch.utils.flop_counter`` on
  the ``meta`` device; the activations autograd keeps for the backward pass (``saved_tensors_hooks``),
  for MPG at its default activation budget and unsplit; the host syncs (tensor → Python reads) one MPG
  step makes. Two FlowMo rows (``lamo.peers.FlowMoGuidance``):

  - ``flowmo_*`` — the FlowMo-style variant (``variant="style"``): forward with gradient, backward,
    and a second forward at the updated ``x_t``; activations: the whole CFG step's, held at once;
    ``--flowmo-fraction`` of the steps guided;
  - ``flowmo_release_*`` — the authors' released algorithm (``variant="release"``): the CFG branches
    re-run with gradient, each transformer call one gradient-checkpoint segment (so the backward runs
    its forward once more), the release loss on the CFG-mixed output, one Adam step, no second forward;
    activations: one segment's (one CFG branch, the most the backward holds at once — CogVideoX's
    batched call is split into its branches, as the peer does);
    ``round(12·S/50)`` steps guided.
* **measured** on ``--device``: wall time of one MPG step at the real latent size — prior in fp32 and
  in bf16, pairs in one call and split to the budget — and, with ``--time-backbone``, of one CFG step
  of the transformer (random weights), which turns MPG's time into a measured share of sampling.
* **derived**: MPG's share of a video's FLOPs, ``guided_steps · MPG / (S · step)``.

    python benchmarks/bench_guidance_step.py --arch cogvideox-2b                       # CPU: counts + MPG step time
    python benchmarks/bench_guidance_step.py --arch cogvideox-2b --device cuda --time-backbone   # GPU
    python benchmarks/bench_guidance_step.py --arch wan-1.3b --counts-only
    python benchmarks/bench_guidance_step.py --arch hunyuanvideo-13b --counts-only
    python benchmarks/bench_guidance_step.py --arch ltx-2b --counts-only

Writes ``benchmarks/results/guidance_step_<arch>_<device>.json`` (device, versions, command, date).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.checkpoint import checkpoint
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from bench_sampling import ARCHS, device_name, median  # noqa: E402  (one table of architectures for every benchmark)

GIB = 2**30
READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default}


class CountReads(TorchDispatchMode):
    """Counts tensor → Python reads (each one makes the host wait for a GPU)."""

    def __init__(self):
        super().__init__()
        self.reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.reads += func in READS
        return func(*args, **(kwargs or {}))


#: each family's prompt width in its transformer config
TEXT_WIDTH = {"cogvideox": "text_embed_dim", "wan": "text_dim", "hunyuanvideo": "text_embed_dim", "ltx": "caption_channels"}


def geometry(arch: str) -> dict:
    """Latent shape of one video, CFG layout and step count of the architecture's standard setting."""
    a = ARCHS[arch]
    family = a.get("family", "cogvideox")
    t, s = a.get("vae", (4, 8))  # CogVideoX, Wan, HunyuanVideo: 1 + 4k frames → 1 + k latent frames, 8× in space
    frames = (a["frames"] - 1) // t + 1
    shape = (1, frames, a["transformer"]["out_channels"], a["height"] // s, a["width"] // s)
    text_len = a["transformer"]["max_text_seq_length"] if family == "cogvideox" else a["text_len"]
    return dict(wan=family == "wan", family=family, shape=shape, text=(text_len, a["transformer"][TEXT_WIDTH[family]]),
                steps=a["steps"])


def build_transformer(arch: str, device: str, dtype: torch.dtype):
    import diffusers

    cls = {"cogvideox": "CogVideoXTransformer3DModel", "wan": "WanTransformer3DModel",
           "hunyuanvideo": "HunyuanVideoTransformer3DModel", "ltx": "LTXVideoTransformer3DModel"}
    with torch.device(device):
        model = getattr(diffusers, cls[ARCHS[arch].get("family", "cogvideox")])(**ARCHS[arch]["transformer"])
    return model.to(dtype).eval().requires_grad_(False)


def _flow_family_call(transformer, geo: dict, latents: torch.Tensor, text: torch.Tensor, t: torch.Tensor,
                      call) -> torch.Tensor:
    """One transformer call of HunyuanVideo or LTX-Video on ``(B, F, C, H, W)`` latents, as its pipeline makes it
    (every prompt token attended to); the output in ``(B, F, C, H, W)``."""
    x = latents.permute(0, 2, 1, 3, 4)  # (B, F, C, H, W) -> (B, C, F, H, W)
    B = x.shape[0]
    if geo["family"] == "hunyuanvideo":
        cfg = transformer.config
        out = call(hidden_states=x, timestep=t.to(x.dtype), encoder_hidden_states=text,
                   encoder_attention_mask=text.new_ones(text.shape[:2]),
                   pooled_projections=text.new_ones(B, cfg.pooled_projection_dim),
                   guidance=text.new_full((B,), 6000.0) if cfg.guidance_embeds else None)
        return out.permute(0, 2, 1, 3, 4)
    from lamo.adapters.ltx import pack_latents, unpack_latents

    F, H, W = x.shape[2:]
    out = call(hidden_states=pack_latents(x), encoder_hidden_states=text, timestep=t, encoder_attention_mask=None,
               num_frames=F, height=H, width=W, rope_interpolation_scale=(8 / 25, 32, 32))  # (B, F·H·W, C)
    return unpack_latents(out, (F, H, W)).permute(0, 2, 1, 3, 4)


def cfg_step(transformer, geo: dict, latents: torch.Tensor, text: torch.Tensor, segments: bool = False,
             branches: bool = False, first_call_only: bool = False) -> torch.Tensor:
    """One classifier-free-guided denoising step's transformer work, as the pipeline does it.

    CogVideoX and LTX-Video concatenate [uncond, cond] into one batch of 2; Wan calls the transformer twice;
    HunyuanVideo (guidance-distilled) once.
    ``latents`` are (B, F, C, H, W). As ``FlowMoGuidance(variant="release")`` re-runs a step:
    ``branches`` — CogVideoX, too, calls the transformer once per CFG branch; ``segments`` — each
    call is one gradient-checkpoint segment. ``first_call_only``: just the first call's raw output.
    """
    t = torch.full((latents.shape[0],), 500, device=latents.device)

    def call(**kw):
        run = lambda h: transformer(hidden_states=h, return_dict=False, **kw)[0]  # noqa: E731
        h = kw.pop("hidden_states")
        return checkpoint(run, h, use_reentrant=False) if segments else run(h)

    if geo["family"] == "hunyuanvideo":  # guidance-distilled: one call per step, no CFG branch
        return _flow_family_call(transformer, geo, latents, text, t, call)
    if geo["family"] == "ltx":  # CFG batched [uncond, cond], as CogVideoX
        if branches:
            uncond = _flow_family_call(transformer, geo, latents * 1, text, t, call)
            if first_call_only:
                return uncond
            cond = _flow_family_call(transformer, geo, latents * 1, text, t, call)
            return uncond + 3.0 * (cond - uncond)
        out = _flow_family_call(transformer, geo, torch.cat([latents, latents]), torch.cat([text, text]),
                                torch.cat([t, t]), call)
        if first_call_only:
            return out
        uncond, cond = out.chunk(2)
        return uncond + 3.0 * (cond - uncond)
    if branches and not geo["wan"]:
        uncond = call(hidden_states=latents * 1, encoder_hidden_states=text, timestep=t)
        if first_call_only:
            return uncond
        cond = call(hidden_states=latents * 1, encoder_hidden_states=text, timestep=t)
        return uncond + 6.0 * (cond - uncond)
    if geo["wan"]:
        x = latents.permute(0, 2, 1, 3, 4)  # (B, F, C, H, W) -> (B, C, F, H, W), Wan's layout
        cond = call(hidden_states=x, timestep=t, encoder_hidden_states=text)
        if first_call_only:
            return cond
        uncond = call(hidden_states=x, timestep=t, encoder_hidden_states=text)
        return (uncond + 6.0 * (cond - uncond)).permute(0, 2, 1, 3, 4)  # (B, C, F, H, W) -> (B, F, C, H, W)
    out = call(hidden_states=torch.cat([latents, latents]), encoder_hidden_states=torch.cat([text, text]),
               timestep=torch.cat([t, t]))
    if first_call_only:
        return out
    uncond, cond = out.chunk(2)
    return uncond + 6.0 * (cond - uncond)


def flash_sdpa(original):
    """``scaled_dot_product_attention`` as a GPU runs it in bf16 (flash attention: the attention matrix
    is neither stored nor saved for backward); the meta device would otherwise pick the math kernel. A
    key-padding mask (``(…, 1, N)``: HunyuanVideo's, LTX-Video's prompt mask) is counted the same way: a GPU
    runs it with the memory-efficient kernel, which saves no attention matrix either, at the same FLOPs."""

    def sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kwargs):
        if (attn_mask is not None and attn_mask.shape[-2] != 1) or kwargs.get("enable_gqa"):
            return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                            scale=scale, **kwargs)
        return torch.ops.aten._scaled_dot_product_flash_attention(query, key, value, dropout_p, is_causal, False,
                                                                  scale=scale)[0]

    return sdpa


def count(fn) -> tuple[float, int]:
    """(FLOPs, bytes saved for backward) of ``fn()`` on meta tensors, attention as flash attention."""
    saved: list[torch.Tensor] = []
    flops = FlopCounterMode(display=False)
    original = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = flash_sdpa(original)
    try:
        with flops, torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            fn()
    finally:
        torch.nn.functional.scaled_dot_product_attention = original
    unique = {id(t): t for t in saved if not isinstance(t, torch.nn.Parameter)}
    return float(flops.get_total_flops()), sum(t.numel() * t.element_size() for t in unique.values())


def make_prior(preset: str, geo: dict, device: str, dtype: torch.dtype):
    from lamo import MotionPrior

    with torch.device(device):
        prior = MotionPrior.from_preset(preset, latent_channels=geo["shape"][2], text_embed_dim=geo["text"][1],
                                        backbone=geo["family"])
    if device != "meta":
        torch.nn.init.normal_(prior.conv_out.weight, std=1e-3)  # a non-zero field, as after training
    return prior.to(dtype)


def mpg_call(guidance, geo: dict, device: str, dtype: torch.dtype):
    """One guided step's inputs and the call itself (``mode="output"``, v-prediction or flow)."""
    g = torch.Generator(device if device != "meta" else "cpu").manual_seed(0)
    shape, kw = geo["shape"], {}
    if device == "meta":
        o = torch.empty(shape, device="meta", dtype=dtype)
        x, cond = torch.empty_like(o), torch.empty(1, geo["text"][1], device="meta")
    else:
        o = torch.randn(shape, generator=g, device=device).to(dtype)
        x = torch.randn(shape, generator=g, device=device).to(dtype)
        cond = torch.randn(1, geo["text"][1], generator=g, device=device)
    if geo["family"] != "cogvideox":
        kw = dict(prediction_type="flow", sigma=torch.tensor(0.3, device=device))
    else:
        kw = dict(prediction_type="v_prediction", alpha_bar=torch.tensor(0.7, device=device))
    steps = geo["steps"]
    return lambda: guidance(o, x, step_index=steps - 1, num_steps=steps, cond=cond, **kw)


def timed(fn, repeats: int, cuda: bool) -> dict:
    times, peak = [], None
    for r in range(repeats + 1):  # the first call warms up
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
            peak = (torch.cuda.max_memory_allocated() - base) / GIB
        if r:
            times.append(time.perf_counter() - t0)
    return {"seconds": median(times), "all_seconds": times, "extra_peak_gib": peak}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=[a for a in ARCHS], default="cogvideox-2b")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"], help="backbone / latent dtype")
    p.add_argument("--prior-preset", default="base")
    p.add_argument("--window", type=float, default=0.8, help="guidance window ρ (guided steps = ρ·S)")
    p.add_argument("--flowmo-fraction", type=float, default=0.3, help="share of steps the FlowMo-style peer guides "
                   "(the release variant guides its own round(12·S/50))")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--counts-only", action="store_true", help="count on the meta device, time nothing")
    p.add_argument("--time-backbone", action="store_true", help="also time one CFG transformer step (GPU)")
    p.add_argument("--update-counts", action="store_true",
                   help="count only, and replace the counted part of the existing results file (--out or the "
                        "default path), keeping what it measured; the file lists this command in count_updates")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    from lamo import MotionPriorGuidance
    from lamo.peers import flowmo_release_loss, release_steps

    dtype = getattr(torch, args.dtype)
    geo = geometry(args.arch)
    S = geo["steps"]
    guided = S - math.ceil(round((1 - args.window) * S, 6))
    flowmo_steps = round(args.flowmo_fraction * S)
    release = release_steps(S)
    B, F, C, H, W = geo["shape"]
    record: dict = {"arch": args.arch, "latents": list(geo["shape"]), "text": list(geo["text"]), "steps": S,
                    "mpg_guided_steps": guided, "flowmo_guided_steps": flowmo_steps,
                    "flowmo_release_guided_steps": release, "dtype": args.dtype, "prior_preset": args.prior_preset}

    # ------------------------------------------------------------------ counted on meta
    print(f"{args.arch}: latents {tuple(geo['shape'])}, {S} steps; counting on the meta device …", flush=True)
    transformer = build_transformer(args.arch, "meta", dtype)
    z = torch.empty(geo["shape"], device="meta", dtype=dtype)
    text = torch.empty(1, *geo["text"], device="meta", dtype=dtype)
    with torch.no_grad():
        step_flops, _ = count(lambda: cfg_step(transformer, geo, z, text))

    def flowmo_extra():  # gradient of a loss on the CFG output w.r.t. x_t through the transformer, then re-forward
        x = z.detach().requires_grad_()
        with torch.enable_grad():
            out = cfg_step(transformer, geo, x, text)
        torch.autograd.grad(out.float().pow(2).sum(), x)
        with torch.no_grad():
            cfg_step(transformer, geo, z, text)

    def flowmo_release_extra():  # lamo.peers.FlowMoGuidance(variant="release"): one guided step's extra work
        x = z.detach().float().requires_grad_()  # the leaf x_t, fp32 as the pipeline's latents
        with torch.enable_grad():
            v = cfg_step(transformer, geo, x.to(dtype), text, segments=True, branches=True)  # (B, F, C, H, W)
            loss = flowmo_release_loss(v).sum()
        (x.grad,) = torch.autograd.grad(loss, x)
        torch.optim.Adam([x], lr=1e-3).step()  # element-wise: no FLOPs the counter counts

    def release_segment():  # the most the release's backward holds at once: one CFG branch's activations
        x = z.detach().requires_grad_()
        with torch.enable_grad():
            cfg_step(transformer, geo, x * 1, text, branches=True, first_call_only=True)

    flowmo_flops, flowmo_saved = count(flowmo_extra)
    release_flops, _ = count(flowmo_release_extra)  # a checkpoint keeps nothing for the outer graph
    _, release_saved = count(release_segment)
    prior = make_prior(args.prior_preset, geo, "meta", torch.float32)
    counts = {"backbone_step_tflop": step_flops / 1e12, "flowmo_extra_tflop": flowmo_flops / 1e12,
              "flowmo_activations_gib": flowmo_saved / GIB,
              "flowmo_release_extra_tflop": release_flops / 1e12,
              "flowmo_release_activations_gib": release_saved / GIB,
              "prior_parameters_m": prior.num_parameters_m()}
    for pdt in ("float32", "bfloat16"):
        pr = make_prior(args.prior_preset, geo, "meta", getattr(torch, pdt))
        for budget in (None, 0.5):
            g = MotionPriorGuidance(pr, scale=1.0, window=args.window, check_finite="off", activation_budget_gib=budget)
            mpg_flops, _ = count(mpg_call(g, geo, "meta", dtype))
            per_call = g.pairs_per_call(B, F - g.tau, H, W)
            held = B * per_call * pr.activation_bytes_per_frame(H, W)
            counts[f"mpg_{pdt}_{'split' if budget else 'one_call'}"] = {
                "tflop": mpg_flops / 1e12, "pairs": F - g.tau, "pairs_per_call": per_call,
                "activations_gib": held / GIB}
    mpg_tflop = counts["mpg_float32_split"]["tflop"]
    counts["mpg_step_vs_backbone_step_flops"] = mpg_tflop / counts["backbone_step_tflop"]
    counts["mpg_share_of_video_flops"] = guided * mpg_tflop / (S * counts["backbone_step_tflop"])
    counts["flowmo_share_of_video_flops"] = flowmo_steps * counts["flowmo_extra_tflop"] / (S * counts["backbone_step_tflop"])
    counts["flowmo_release_share_of_video_flops"] = (release * counts["flowmo_release_extra_tflop"]
                                                     / (S * counts["backbone_step_tflop"]))
    record["counted"] = counts
    print(json.dumps(counts, indent=1), flush=True)

    # syncs of one real MPG step (tiny prior, same code path)
    tiny = make_prior("tiny", geo, "cpu", torch.float32)
    small_geo = dict(geo, shape=(1, F, C, 4, 4))
    reads = CountReads()
    with reads:
        mpg_call(MotionPriorGuidance(tiny, scale=1.0, check_finite="deferred"), small_geo, "cpu", torch.float32)()
    record["host_syncs_per_mpg_step"] = {"deferred_check (pipelines)": reads.reads}
    reads = CountReads()
    with reads:
        mpg_call(MotionPriorGuidance(tiny, scale=1.0, check_finite="step"), small_geo, "cpu", torch.float32)()
    record["host_syncs_per_mpg_step"]["per_step_check"] = reads.reads

    # ------------------------------------------------------------------ measured on the device
    cuda = args.device.startswith("cuda")
    if not (args.counts_only or args.update_counts):
        measured = {}
        for pdt in ("float32", "bfloat16"):
            pr = make_prior(args.prior_preset, geo, args.device, getattr(torch, pdt))
            for budget in (None, 0.5):
                name = f"mpg_{pdt}_{'split' if budget else 'one_call'}"
                g = MotionPriorGuidance(pr, scale=1.0, window=args.window, check_finite="deferred",
                                        activation_budget_gib=budget)
                measured[name] = timed(mpg_call(g, geo, args.device, dtype), args.repeats, cuda)
                print(f"{name:>22}: {measured[name]['seconds'] * 1e3:.1f} ms"
                      + (f", +{measured[name]['extra_peak_gib']:.2f} GiB" if cuda else ""), flush=True)
            del pr
        if args.time_backbone:
            tr = build_transformer(args.arch, args.device, dtype)
            zz = torch.randn(geo["shape"], device=args.device, dtype=dtype)
            tt = torch.randn(1, *geo["text"], device=args.device, dtype=dtype)
            with torch.no_grad():
                measured["backbone_step"] = timed(lambda: cfg_step(tr, geo, zz, tt), args.repeats, cuda)
            step_s = measured["backbone_step"]["seconds"]
            for name in [k for k in measured if k.startswith("mpg_")]:
                measured[name]["share_of_video_time"] = guided * measured[name]["seconds"] / (S * step_s)
            print(f"{'backbone CFG step':>22}: {step_s * 1e3:.1f} ms", flush=True)
        record["measured"] = measured

    import diffusers

    run = {
        "device": device_name(args.device),
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "python": sys.version.split()[0]},
        "command": "python benchmarks/bench_guidance_step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out or Path(__file__).parent / "results" / f"guidance_step_{args.arch}_{'cuda' if cuda else 'cpu'}.json")
    if args.update_counts:
        if not out.exists():
            raise SystemExit(f"--update-counts: no results file {out} to update; run without it first")
        old = json.loads(out.read_text())
        keys = ("arch", "latents", "dtype", "prior_preset")
        if [old.get(k) for k in keys] != [record[k] for k in keys]:
            raise SystemExit(f"--update-counts: {out} holds {[old.get(k) for k in keys]}, this run counts "
                             f"{[record[k] for k in keys]} ({', '.join(keys)})")
        changed = {k: (old["counted"].get(k), v) for k, v in counts.items()
                   if k in old.get("counted", {}) and old["counted"][k] != v}
        if changed:
            print(f"counts that differ from the file's: {changed}", flush=True)
        old.update(record)  # counted parts only: "measured", "device" and "command" stay the first run's
        old.setdefault("count_updates", []).append(run)
        record = old
    else:
        record.update(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
