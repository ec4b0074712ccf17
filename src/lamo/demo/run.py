"""``lamo demo`` and ``lamo bench effect``: the effect benchmark on the physics world.

Does Motion Prior Guidance (and the drift-loss fine-tune) make the shipped toy CogVideoX move more
physically, by how much, and is the change real? Steps (all on the CPU):

1. load the shipped demo backbone (:mod:`lamo.demo.model`, trained by ``lamo demo train-backbone``);
2. the motion prior: the shipped one (``assets/demo-prior``), or priors trained here — one per lag in
   ``prior_taus`` — on fresh clips of the world encoded by the backbone's own VAE and text encoder
   (videos and captions only, never the simulator's states);
3. the knobs (which prior, λ, window ρ, the peer's step size η): read from the prior's own ``sampling.json``
   (λ, ρ) and the *selection* made on validation prompts by a full run (``assets/demo-prior/selection.json``),
   or chosen here on validation prompts × seeds — the held-out test prompts never choose anything — and then
   written into the chosen prior's ``sampling.json`` (:func:`lamo.prior.write_sampling_settings`);
4. held-out test prompts × seeds under every variant, with the same initial noise per (prompt, seed);
5. every clip tracked and scored (:mod:`lamo.physics.metrics`, :mod:`lamo.motion_metrics`); the
   ground-truth renders of the same captions too;
6. paired statistics (:mod:`lamo.effect`): per metric the effect with a 95 % bootstrap interval, a
   paired permutation test, Holm-corrected, and a verdict — "improved", "worsened" or "no detectable
   change" with the smallest effect the run could have seen; the composite physics error as the
   headline; ``index.html`` (forest plot, λ sweep, tables, side-by-side GIFs) and ``results.json``
   (with every clip's row).

Presets (:data:`PRESETS`): ``demo`` (``make demo``: the shipped prior and selection, 48 test prompts ×
2 seeds, ≤ 5 minutes on 2 cores) and ``full`` (``lamo bench effect``: priors trained for τ = 2 and 1,
knobs chosen on 32 validation prompts × 2 seeds, 128 test prompts × 2 seeds, and the ablations).

The engine, one module per responsibility (this one only orchestrates them):
:mod:`~lamo.demo.config` (:class:`DemoConfig`, :data:`PRESETS`, asset paths), :mod:`~lamo.demo.priors` (training
priors), :mod:`~lamo.demo.variants` (prompts, sampling, scoring), :mod:`~lamo.demo.selection` (knobs chosen on
validation), :mod:`~lamo.demo.stats` (paired statistics) and :mod:`~lamo.demo.report` (the report).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..effect import COMPOSITE
from ..errors import InputError, MissingInputError
from ..prior import MotionPrior
# the engine's names, importable from here as before the split
from .config import (ASSETS, DEFAULT_BACKBONE, DEFAULT_FINETUNES, DEFAULT_PRIOR, MARKER, MDL, PLAIN_FT,  # noqa: F401
                     PRESETS, DemoConfig, _commit, provenance)
from .priors import _prior_hash, _sha256, _train_priors, encode_world_clips, fit_prior, train_prior  # noqa: F401
from .report import PAPER_FIGURES, _abs_cell, _cell, _drift_recipe, print_table, write_report  # noqa: F401
from .selection import (_effect_summary, _select, apply_sampling_settings, choose,  # noqa: F401
                        record_sampling_settings, sampling_settings)
from .stats import (HEADLINE, READOUT_B, SECONDARY, TABLE, _summary, analyse, analyse_readout_b,  # noqa: F401
                    headline_both, reanalyse)
from .variants import (TEST_WORLD_SEED, VAL_WORLD_SEED, Variant, _load_pipeline, _prompts, _sample,  # noqa: F401
                       _score, add_ground_truth, add_sharpness_error, held_out_clips, validation_prompts)

__all__ = ["DemoConfig", "PRESETS", "run_demo", "fit_prior", "train_prior", "encode_world_clips", "DEFAULT_BACKBONE", "DEFAULT_PRIOR", "HEADLINE",
           "SECONDARY", "choose", "analyse", "reanalyse", "add_sharpness_error", "add_ground_truth", "provenance",
           "validation_prompts", "held_out_clips", "VAL_WORLD_SEED", "TEST_WORLD_SEED"]

log = logging.getLogger(__name__)


def _check_out(outdir: Path) -> None:
    """The report folder is new, empty, or an earlier (possibly interrupted) report of this command —
    replaced, and said so; anything else is refused so no one's files are overwritten."""
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir} is a file; the report needs a folder: pass a new or empty --out")
    if not outdir.exists() or not any(outdir.iterdir()):
        return
    if not (outdir / MARKER).is_file():
        raise InputError(f"{outdir} holds files that are not an earlier LaMo report; pass an empty or new --out")
    log.warning("replacing the earlier report in %s", outdir)



def _read_selection(path: str) -> dict:
    """A ``selection.json`` (``--selection``): a JSON object with a finite λ ≥ 0 (``lambda``) and peer step size
    (``flowmo_eta``); anything else is one line naming the file and what to do."""
    import math

    fix = "pass the selection.json a run of `lamo bench effect` wrote, or --selection '' to choose λ here"
    try:
        sel = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"--selection {path} is not valid JSON ({e}); {fix}") from None
    if not isinstance(sel, dict):
        raise InputError(f"--selection {path} must hold a JSON object, got {type(sel).__name__}; {fix}")
    for key, what in (("lambda", "λ"), ("flowmo_eta", "the peer's step size η")):
        value = sel.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise InputError(f"--selection {path} records no {what} ({key!r}: a finite number ≥ 0, got {value!r}); "
                             f"{fix}")
    return sel


def _check_prior_taus(cfg: DemoConfig) -> None:
    """Refuse, before any prior trains, a ``--prior-taus`` lag the backbone's clips cannot hold (τ + 1 latent
    frames needed), read from its transformer's config."""
    try:
        t = json.loads((Path(cfg.backbone) / "transformer" / "config.json").read_text())
        frames = (int(t["sample_frames"]) - 1) // int(t.get("temporal_compression_ratio") or 4) + 1
    except (OSError, ValueError, KeyError, TypeError):
        return  # loading the backbone says what is wrong with it
    bad = [tau for tau in cfg.prior_taus if not 1 <= tau < frames]
    if bad:
        raise InputError(f"--prior-taus {' '.join(map(str, bad))}: the backbone's clips have {frames} latent frames "
                         f"and a lag τ needs τ + 1; pass lags from 1 to {frames - 1}")


def run_demo(out: str | Path = "report", cfg: DemoConfig | None = None) -> int:
    """Run the effect benchmark end to end and write its report; return 0 on success."""
    from diffusers import CogVideoXTransformer3DModel

    cfg = cfg or DemoConfig(out=str(out))
    if not (Path(cfg.backbone) / "model_index.json").is_file():
        raise MissingInputError(
            f"the demo backbone is missing at {cfg.backbone}. Reproduce it with `lamo demo train-backbone --data DIR` "
            "after `lamo data physics --out DIR -n 8000` (see README), then pass --backbone."
        )
    if cfg.prior and not (Path(cfg.prior) / "config.json").is_file():
        raise MissingInputError(f"no trained motion prior at {cfg.prior}; pass --prior '' --selection '' to train one "
                                "and choose λ here (slower), or reproduce the shipped one as README describes")
    if cfg.selection and not Path(cfg.selection).is_file():
        raise MissingInputError(f"no selection file at {cfg.selection}; pass --selection '' to choose λ on validation "
                                "prompts here")
    if cfg.selection and not cfg.prior:
        raise InputError("a selection belongs to the prior it was made with: pass --prior with --selection, "
                         "or neither (priors are then trained and the knobs chosen here)")
    if cfg.test_prompts < 1 or not cfg.test_seeds or cfg.chunk < 1:
        raise InputError("the test needs at least one prompt, one seed and a chunk ≥ 1")
    selection = _read_selection(cfg.selection) if cfg.selection else None  # garbled: refused before anything runs
    if not cfg.prior:
        _check_prior_taus(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.time()
    outdir = Path(cfg.out)
    _check_out(outdir)
    pipe, meta, preset, world = _load_pipeline(cfg)
    (outdir / "media").mkdir(parents=True, exist_ok=True)
    (outdir / MARKER).write_text("a report of `lamo demo` / `lamo bench effect`\n")
    timings: dict[str, float] = {}

    # 1–2. the motion prior
    t = time.time()
    if cfg.prior:
        prior = MotionPrior.from_pretrained(cfg.prior).float().eval()
        prior.check_compatible(preset["latent_channels"], preset["text_dim"], backbone="cogvideox-demo")
        stats_file = Path(cfg.prior) / "training_stats.json"
        label = f"τ={prior.config.tau}"
        priors = {label: prior}
        prior_stats = {label: json.loads(stats_file.read_text()) if stats_file.is_file() else {}}
    else:
        priors, prior_stats = _train_priors(cfg, pipe, preset, world, outdir)
    timings["prior_s"] = time.time() - t

    # 3. the knobs, from validation prompts only
    t = time.time()
    if cfg.selection:
        sel = selection
        if sel.get("prior_sha256") != _prior_hash(cfg.prior):
            raise InputError(f"{cfg.selection} was made for another prior than {cfg.prior} (its weights differ); "
                             "pass that prior, or --selection '' to choose λ on validation prompts here")
        made = {k: sel[k] for k in ("steps", "guidance_scale", "cfg_scale") if k in sel}  # cfg_scale: older files
        here = {"steps": cfg.steps, "guidance_scale": cfg.guidance_scale, "cfg_scale": cfg.guidance_scale}
        if any(float(v) != float(here[k]) for k, v in made.items()):
            raise InputError(f"{cfg.selection} chose λ under other sampler settings ({made}) than this run's "
                             f"({ {k: here[k] for k in made} }); pass the same --steps / --guidance-scale, or "
                             "--selection '' to choose λ on validation prompts under these")
        sel["source"] = str(cfg.selection)
        sel["prior"] = label
        sel = apply_sampling_settings(sel, cfg.prior, cfg)  # the prior's own sampling.json wins where present
    else:
        sel = _select(cfg, pipe, preset, world, priors)
        sel["source"] = "chosen in this run"
        chosen_folder = Path(cfg.prior or outdir / f"prior-tau{priors[sel['prior']].config.tau}")
        sel["prior_sha256"] = _prior_hash(chosen_folder)
        (outdir / "selection.json").write_text(json.dumps(sel, indent=2))
        # the chosen prior carries what it was validated at; a prior passed in is not written to: its settings
        # land beside the report, to be copied into the prior's folder
        written = record_sampling_settings(chosen_folder if not cfg.prior else outdir, sel, cfg)
        if written is not None:
            sel["sampling_settings_file"] = str(written)
            log.info("wrote the validated settings %s to %s", sampling_settings(sel, cfg), written)
    timings["selection_s"] = time.time() - t
    chosen, lam, eta = priors[sel["prior"]], float(sel["lambda"]), float(sel["flowmo_eta"])
    rho = float(sel.get("window", cfg.window))  # a knob of the selection, like λ

    # 4. test prompts × seeds under each variant (same initial noise per pair)
    t = time.time()
    test = held_out_clips(world, cfg.test_prompts)
    prompts = [c.caption for c in test]
    knobs = f"λ={lam:g}" + (f" ρ={rho:g}" if rho != cfg.window else "")
    mpg, mdl_mpg = f"MPG {knobs}", f"MDL + MPG {knobs}"
    peer = f"FlowMo peer ({sel.get('flowmo_variant', cfg.flowmo_variant)}) η={eta:g}"
    variants: dict[str, Variant] = {"baseline": Variant(), mpg: Variant(lam=lam, window=rho)}
    comparisons = [(mpg, "baseline")]
    if cfg.ablations:
        for other, lam_o in sel.get("lambda_per_prior", {}).items():
            if other != sel["prior"] and other in priors:
                w_o = float(sel.get("window_per_prior", {}).get(other, rho))
                variants[f"MPG {other} prior λ={lam_o:g}" + (f" ρ={w_o:g}" if w_o != rho else "")] = Variant(
                    prior=other, lam=float(lam_o), window=w_o)
        variants[f"direct latent edit λ={lam:g}"] = Variant(lam=lam, mode="latent", window=rho)
        comparisons += [(n, "baseline") for n in list(variants)[2:]]
    if cfg.flowmo_sweep or cfg.selection:
        variants[peer] = Variant(flowmo=eta)
        comparisons.append((peer, "baseline"))
    tuned = {k: Path(v) for k, v in cfg.finetunes.items() if (Path(v) / "config.json").is_file()}
    if PLAIN_FT in tuned and MDL in tuned:
        variants.update({PLAIN_FT: Variant(transformer=PLAIN_FT), MDL: Variant(transformer=MDL),
                         mdl_mpg: Variant(transformer=MDL, lam=lam, window=rho)})
        comparisons += [(MDL, PLAIN_FT), (MDL, "baseline"), (mdl_mpg, "baseline"), (mdl_mpg, mpg)]
    else:
        log.warning("fine-tuned transformers not found (%s): the MDL variants are skipped", ", ".join(cfg.finetunes.values()))
    frames, rows, sample_s, sample_cpu_s = {}, {}, {}, {}
    base_transformer = pipe.transformer
    # warm-up (not timed): the first call's one-off costs (allocations, kernels chosen, lazy imports) would
    # otherwise land on whichever variant samples first and bias the wall-time table
    _sample(pipe, prompts[:1], cfg.test_seeds[:1], replace(cfg, steps=min(cfg.steps, 2)), preset, chosen, lam,
            desc="warm-up", window=rho)
    n_clips = len(prompts) * len(cfg.test_seeds)
    bar = tqdm(total=len(variants) * n_clips, desc="test clips", unit="clip", dynamic_ncols=True)  # one bar
    for name, v in variants.items():
        bar.set_postfix_str(name)
        pipe.transformer = (base_transformer if v.transformer is None else  # shipped in bf16, run in fp32 like the base
                            CogVideoXTransformer3DModel.from_pretrained(tuned[v.transformer], torch_dtype=torch.float32))
        prior = chosen if v.prior is None else priors[v.prior]
        t_v, cpu_v = time.time(), time.process_time()
        frames[name], guide = _sample(pipe, prompts, cfg.test_seeds, cfg, preset, prior, v.lam, v.mode, v.flowmo, desc=name,
                                      window=v.window, bar=bar)
        sample_s[name] = time.time() - t_v
        sample_cpu_s[name] = time.process_time() - cpu_v
        rows[name] = _score(frames[name], world, prompts, cfg.test_seeds, second_readout=True)
        if v.prior is None:  # L_guide under the chosen prior, comparable across these variants
            for r, g in zip(rows[name], guide):
                r["guide_loss"] = float(g)
    bar.close()
    pipe.transformer = base_transformer
    add_ground_truth(rows, test, world)
    timings["test_s"] = time.time() - t

    # 5. paired statistics
    t = time.time()
    effects, secondary = analyse(rows, comparisons, cfg.n_resamples, cfg.seed)
    effects_b, robust_b = analyse_readout_b(rows, comparisons, cfg.n_resamples, cfg.seed)
    timings["stats_s"] = time.time() - t
    summary = {name: _summary(r) for name, r in rows.items()}

    # 6. report
    n_test = cfg.test_prompts * len(cfg.test_seeds)
    head = effects[f"{mpg} vs baseline"][COMPOSITE]
    both = headline_both(f"{mpg} vs baseline", effects, robust_b)
    timings["total_s"] = time.time() - t_start
    results = {
        "config": asdict(cfg), **provenance(), "backbone": meta, "prior": prior_stats, "selection": sel,
        "lambda": lam, "window": rho, "flowmo_eta": eta, "n_test_clips": n_test, "sampling_s": sample_s,
        "sampling_cpu_s": sample_cpu_s, "summary": summary,
        "effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in effects.items()},
        "secondary": {k: {m: e.to_dict() for m, e in v.items()} for k, v in secondary.items()},
        "readout_b": {"effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in effects_b.items()},
                      "robust": robust_b},
        "headline": head.sentence(), "headline_both": both, "per_clip": rows, "prompts": prompts, "timings": timings,
    }
    (outdir / "results.json").write_text(json.dumps(results, indent=2, default=float))
    page = write_report(outdir, cfg, meta=meta, priors=priors, prior_stats=prior_stats, sel=sel, lam=lam, rho=rho,
                        eta=eta, test=test, frames=frames, variants=variants, effects=effects, secondary=secondary,
                        summary=summary, sample_s=sample_s, sample_cpu_s=sample_cpu_s, timings=timings, tuned=tuned, world=world,
                        headline=head.sentence(), effects_b=effects_b, robust_b=robust_b, headline_both=both)
    print_table(effects, n_test, effects_b, robust_b)
    print(f"\nreport: {page}  ({timings['total_s']:.0f} s)")
    return 0
