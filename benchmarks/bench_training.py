"""Training cost: the Motion Drift Loss's overhead per fine-tuning step, and the prior's training throughput.

    python benchmarks/bench_training.py                 # the demo backbone's transformer + a `small` prior, CPU
    python benchmarks/bench_training.py --device cuda    # same on a GPU

Overhead: median wall time of a full fine-tuning step (forward, loss, backward, optimizer) with
λ_drift = 0.4 vs λ_drift = 0, same batch, same seeds. Throughput: prior training steps and clips per second.
Writes ``benchmarks/results/training_<device>.json`` (device, versions, command, date).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_sampling import device_name, median  # noqa: E402  (shared by every benchmark)


def _median_step(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--prior-preset", default="small")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import diffusers

    from lamo import MotionPrior
    from lamo.adapters import get_adapter
    from lamo.demo.run import DEFAULT_BACKBONE
    from lamo.pipelines import LaMoCogVideoXPipeline
    from lamo.training.finetune import FinetuneLoss

    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    pipe = LaMoCogVideoXPipeline.from_pretrained(DEFAULT_BACKBONE).to(dev)
    adapter = get_adapter(pipe)
    meta = json.loads((DEFAULT_BACKBONE / "lamo_demo.json").read_text())["preset"]
    g = torch.Generator().manual_seed(0)
    F = meta["frames"] // meta["temporal_compression"]
    h = meta["size"] // meta["patch_size"]
    z = torch.randn(args.batch_size, F, meta["latent_channels"], h, h, generator=g).to(dev)
    emb = torch.randn(args.batch_size, meta["max_text_len"], meta["text_dim"], generator=g).to(dev)
    transformer = pipe.transformer.train()
    opt = torch.optim.AdamW(transformer.parameters(), lr=1e-5)

    def step(weight: float):
        m = FinetuneLoss(transformer, pipe.scheduler, adapter, weight, "normalized", 2)

        def run():
            loss = m(z, emb, seed=1)[0]
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return run

    plain = _median_step(step(0.0), args.repeats, sync)
    drift = _median_step(step(0.4), args.repeats, sync)

    prior = MotionPrior.from_preset(args.prior_preset, latent_channels=z.shape[2], text_embed_dim=emb.shape[2]).to(dev)
    popt = torch.optim.AdamW(prior.parameters(), lr=3e-4)
    cond = emb.mean(1)

    def prior_step():
        loss = prior.training_loss(z, cond).per_sample.mean()
        loss.backward()
        popt.step()
        popt.zero_grad(set_to_none=True)

    prior_s = _median_step(prior_step, args.repeats, sync)
    record = {
        "device": device_name(dev.type), "batch_size": args.batch_size, "latents": list(z.shape),
        "finetune_step_s": {"without_drift": plain, "with_drift": drift},
        "drift_overhead": drift / plain - 1.0,
        "prior": {"preset": args.prior_preset, "parameters_m": prior.num_parameters_m(), "step_s": prior_s,
                  "clips_per_s": args.batch_size / prior_s, "pairs_per_s": args.batch_size * (F - 2) / prior_s},
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "python": sys.version.split()[0]},
        "command": "python benchmarks/bench_training.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out or Path(__file__).parent / "results" / f"training_{dev.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"fine-tuning step: {plain * 1e3:.1f} ms without the drift loss, {drift * 1e3:.1f} ms with it "
          f"({100 * record['drift_overhead']:+.1f} %)")
    print(f"prior ({args.prior_preset}): {prior_s * 1e3:.1f} ms/step, {record['prior']['clips_per_s']:.0f} clips/s")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
