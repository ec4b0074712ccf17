"""`lamo train prior`: loss falls, checkpoints load, an interrupted run resumes to the same weights, DDP on CPU."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lamo import MotionPrior
from lamo.cli import main


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A tiny latent cache of translating blobs (the format `lamo cache` writes)."""
    root = tmp_path_factory.mktemp("cache")
    g = torch.Generator().manual_seed(0)
    ys, xs = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    lat, pooled, caps = [], [], []
    for i in range(32):
        y0, x0 = torch.randint(2, 6, (2,), generator=g).tolist()
        d = 1 if i % 2 else -1
        lat.append(torch.stack([torch.exp(-((ys - y0) ** 2 + (xs - x0 - d * t) ** 2) / 3.0) for t in range(5)])[:, None]
                   .repeat(1, 4, 1, 1))
        pooled.append(torch.full((8,), float(d)))
        caps.append("right" if d > 0 else "left")
    save_file({"latents": torch.stack(lat), "pooled": torch.stack(pooled), "index": torch.arange(32)},
              str(root / "shard-00000.safetensors"))
    (root / "manifest.json").write_text(json.dumps({"family": "cogvideox", "latent_shape": [5, 4, 8, 8], "text_dim": 8,
                                                    "shards": [{"shard": 0, "file": "shard-00000.safetensors", "n": 32,
                                                                "captions": caps, "skipped": []}]}))
    return root


def _args(cache, out, *extra):
    return ["train", "prior", "--cache", str(cache), "--out", str(out), "--preset", "tiny", "--batch-size", "4",
            "--lr", "3e-3", "--save-every", "3", "--log-with", "none", "--seed", "1", *extra]


def test_loss_falls_and_the_prior_loads(cache, tmp_path):
    assert main(_args(cache, tmp_path / "r", "--steps", "30")) == 0
    states = sorted((tmp_path / "r" / "checkpoints").glob("step-*"))
    first = json.loads((states[0] / "trainer_state.json").read_text())
    last = json.loads((states[-1] / "trainer_state.json").read_text())
    assert last["val_loss"] < first["val_loss"] and last["val_cosine"] > first["val_cosine"]
    prior = MotionPrior.from_pretrained(tmp_path / "r" / "prior")
    assert prior.config.backbone == "cogvideox" and prior.config.latent_channels == 4
    assert (tmp_path / "r" / "config.yaml").is_file() and (states[-1] / "config.yaml").is_file()


def test_interrupted_run_resumes_to_the_same_weights(cache, tmp_path, capsys):
    assert main(_args(cache, tmp_path / "a", "--steps", "9")) == 0
    assert main(_args(cache, tmp_path / "b", "--steps", "9", "--max-steps-this-run", "5")) == 0  # killed at step 5
    assert not (tmp_path / "b" / "prior").exists()
    capsys.readouterr()
    assert main(_args(cache, tmp_path / "b", "--steps", "9", "--resume-from-checkpoint", "latest")) == 0
    assert "at step 5" in capsys.readouterr().out  # it continued, it did not start over
    a = MotionPrior.from_pretrained(tmp_path / "a" / "prior").state_dict()
    b = MotionPrior.from_pretrained(tmp_path / "b" / "prior").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_two_processes_on_cpu_with_gloo(cache, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lamo.cli",
           *_args(cache, tmp_path / "ddp", "--steps", "12", "--save-every", "6")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(sorted((tmp_path / "ddp" / "checkpoints").glob("step-*"))) == 2
    trained = MotionPrior.from_pretrained(tmp_path / "ddp" / "prior").eval()
    untrained = MotionPrior.from_preset("tiny", latent_channels=4, text_embed_dim=8).eval()
    from lamo.cache import CachedLatentDataset

    ds = CachedLatentDataset(cache)
    z = torch.stack([ds[i]["latents"] for i in range(len(ds))])
    c = torch.stack([ds[i]["pooled"] for i in range(len(ds))])
    with torch.no_grad():
        before = untrained.training_loss(z, c).per_sample.mean()
        after = trained.training_loss(z, c).per_sample.mean()
    assert after < 0.8 * before  # the loss fell under two-process training


# ---------------------------------------------------------------------------------------- recipe "lamo-release"
def test_recipe_fills_only_defaults_and_the_cosine_schedule():
    from lamo.training.prior import PRIOR_RECIPES, PriorTrainConfig, apply_recipe, lr_factor, parse_prior_options

    cfg = apply_recipe(PriorTrainConfig(recipe="lamo-release", steps=7), PRIOR_RECIPES)
    assert (cfg.preset, cfg.lr, cfg.lr_schedule, cfg.batch_size, cfg.steps) == ("release", 5e-4, "release-cosine", 1, 7)
    assert apply_recipe(PriorTrainConfig(), PRIOR_RECIPES) == PriorTrainConfig()  # no recipe: defaults unchanged
    with pytest.raises(ValueError, match="unknown recipe"):
        apply_recipe(PriorTrainConfig(recipe="paper"), PRIOR_RECIPES)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(torch.optim.SGD([torch.zeros(1)], lr=1.0), T_max=10)
    for step in range(10):
        assert abs(lr_factor("cosine", step, 10) - sched.get_last_lr()[0]) < 1e-12
        sched.optimizer.step()
        sched.step()
    assert lr_factor("constant", 5, 10) == 1.0
    assert parse_prior_options("tau=1, noise_aug=diffusion,cosine_weight=0.3") == \
        {"tau": 1, "noise_aug": "diffusion", "cosine_weight": 0.3}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_prior_options("depth=3")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from diffusers import CogVideoXPipeline
    from tiny_models import tiny_cogvideox_components, tiny_pipeline

    root = tmp_path_factory.mktemp("model")
    tiny_pipeline(CogVideoXPipeline, tiny_cogvideox_components()).save_pretrained(root)
    return root


def test_scheduler_noise_stds_are_the_backbone_schedule(tiny_model):
    from diffusers import CogVideoXDDIMScheduler

    from lamo.training.prior import scheduler_noise_stds

    levels = scheduler_noise_stds(str(tiny_model))
    sched = CogVideoXDDIMScheduler.from_pretrained(tiny_model, subfolder="scheduler")
    assert levels.shape == (sched.config.num_train_timesteps,)
    assert levels.dtype == torch.float32 and torch.allclose(levels, (1 - sched.alphas_cumprod).sqrt().float())


def test_release_recipe_trains_the_release_predictor(cache, tmp_path, tiny_model, capsys):
    import yaml

    small = ["--prior-options", "hidden_channels=16,num_blocks=1,cond_dim=8"]
    args = ["train", "prior", "--cache", str(cache), "--recipe", "lamo-release", "--steps", "6", "--batch-size", "4",
            "--save-every", "3", "--log-with", "none", *small]
    assert main(args + ["--out", str(tmp_path / "no-model")]) == 2  # the cache names no model: ᾱ_t is unknown,
    assert "--aug-model" in capsys.readouterr().err  # and the message says what to pass
    assert main(args + ["--out", str(tmp_path / "r"), "--aug-model", str(tiny_model)]) == 0
    cfg = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert (cfg["preset"], cfg["lr"], cfg["lr_schedule"], cfg["batch_size"]) == ("release", 5e-4, "release-cosine", 4)
    prior = MotionPrior.from_pretrained(tmp_path / "r" / "prior")
    assert (prior.config.arch, prior.config.tau, prior.config.noise_aug, prior.config.cosine_weight) == \
        ("release", 1, "diffusion", 0.3)
    assert prior.output_proj.weight.abs().sum() > 0  # it trained
