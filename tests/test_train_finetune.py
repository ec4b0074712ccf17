"""`lamo train finetune`: the drift term is computed, weighted by w(t), and lowers the drift error."""
import json

import pytest
import torch
from diffusers import CogVideoXPipeline
from safetensors.torch import save_file

from lamo import MotionPrior
from lamo.adapters import get_adapter
from lamo.cli import main
from lamo.losses import drift_loss_terms
from lamo.training.finetune import FinetuneLoss


def test_drift_term_is_w_t_weighted(drifting_cache):
    root, latents, embeds = drifting_cache
    pipe = CogVideoXPipeline.from_pretrained(root / "model", tokenizer=None, text_encoder=None)
    adapter = get_adapter(pipe)
    m = FinetuneLoss(pipe.transformer, pipe.scheduler, adapter, drift_weight=0.4, drift_mode="normalized", tau=1)
    loss, denoise, drift, _, prior_loss, _ = m(latents[:4], embeds[:4], seed=7)
    assert prior_loss == 0  # no jointly trained prior
    tf = adapter.training_forward(pipe.transformer, pipe.scheduler, latents[:4], embeds[:4],
                                  generator=torch.Generator().manual_seed(7))
    terms = drift_loss_terms(tf.x0_pred, latents[:4], tau=1, weight=tf.weight)
    assert torch.allclose(drift, (tf.weight * terms.per_sample).mean(), rtol=1e-5)
    assert torch.allclose(loss, denoise + 0.4 * drift, rtol=1e-5) and drift > 0


def _drift_error(transformer_dir, root, latents, embeds):
    from diffusers import CogVideoXTransformer3DModel

    pipe = CogVideoXPipeline.from_pretrained(root / "model", tokenizer=None, text_encoder=None)
    pipe.transformer = CogVideoXTransformer3DModel.from_pretrained(transformer_dir)
    adapter = get_adapter(pipe)
    with torch.no_grad():
        # at low and middle noise levels, where w(t) puts the drift loss's weight
        errs = [drift_loss_terms(adapter.training_forward(pipe.transformer, pipe.scheduler, latents, embeds,
                                                          timesteps=torch.full((len(latents),), t),
                                                          generator=torch.Generator().manual_seed(s)).x0_pred,
                                 latents, tau=1).per_sample.mean() for s in range(4) for t in (100, 300, 500)]
    return float(torch.stack(errs).mean())


def test_drift_loss_lowers_the_drift_error_on_the_training_clips(drifting_cache, tmp_path):
    root, latents, embeds = drifting_cache
    common = ["train", "finetune", "--model", str(root / "model"), "--cache", str(root / "cache"), "--lora-rank", "0",
              "--steps", "100", "--batch-size", "4", "--lr", "5e-3", "--drift-tau", "1", "--save-every", "100",
              "--log-with", "none", "--seed", "3"]
    assert main(common + ["--out", str(tmp_path / "plain"), "--drift-weight", "0"]) == 0
    assert main(common + ["--out", str(tmp_path / "mdl"), "--drift-weight", "4"]) == 0  # a strong term: a clear effect
    log = [json.loads(x) for x in (tmp_path / "mdl" / "loss.jsonl").read_text().splitlines()]
    assert len(log) == 100 and all(r["drift_weighted"] > 0 for r in log)
    plain = _drift_error(tmp_path / "plain" / "transformer", root, latents, embeds)
    mdl = _drift_error(tmp_path / "mdl" / "transformer", root, latents, embeds)
    assert mdl < 0.95 * plain, (mdl, plain)  # measured: 0.258 vs 0.283


def test_lora_fine_tune_saves_lora_weights(drifting_cache, tmp_path):
    root, _, _ = drifting_cache
    assert main(["train", "finetune", "--model", str(root / "model"), "--cache", str(root / "cache"), "--lora-rank",
                 "4", "--steps", "2", "--batch-size", "2", "--save-every", "2", "--log-with", "none",
                 "--gradient-checkpointing", "yes", "--out", str(tmp_path / "lora")]) == 0
    assert (tmp_path / "lora" / "lora" / "pytorch_lora_weights.safetensors").is_file()


def test_periodic_validation_videos(tmp_path):
    """A demo-style pipeline (with tokenizer, T5 and VAE) writes validation mp4s every N steps."""
    from lamo.demo.model import build_demo_pipeline
    from lamo.video_io import read_video

    pipe = build_demo_pipeline("test", ["a", "ball"])
    pipe.save_pretrained(tmp_path / "model")
    (tmp_path / "cache").mkdir()
    z = torch.randn(4, 4, 8, 4, 4)
    ids = pipe.tokenizer(["a ball"] * 4, padding="max_length", max_length=12, return_tensors="pt").input_ids
    with torch.no_grad():
        emb = pipe.text_encoder(ids)[0]
    save_file({"latents": z, "pooled": emb.mean(1), "prompt_embeds": emb, "index": torch.arange(4)},
              str(tmp_path / "cache" / "shard-00000.safetensors"))
    (tmp_path / "cache" / "manifest.json").write_text(json.dumps({
        "family": "cogvideox", "latent_shape": [4, 8, 4, 4], "text_dim": 16,
        "shards": [{"shard": 0, "file": "shard-00000.safetensors", "n": 4, "captions": ["a ball"] * 4, "skipped": []}]}))
    assert main(["train", "finetune", "--model", str(tmp_path / "model"), "--cache", str(tmp_path / "cache"),
                 "--lora-rank", "0", "--steps", "2", "--batch-size", "2", "--save-every", "2", "--log-with", "none",
                 "--validation-every", "1", "--validation-prompts", "a ball|a ball ball", "--validation-steps", "2",
                 "--out", str(tmp_path / "o")]) == 0
    for step in (1, 2):
        for i in range(2):
            assert read_video(tmp_path / "o" / "validation" / f"step-00000{step}" / f"{i}.mp4").shape[1:] == (16, 16, 3)


def test_batch_mean_drift_weighting_is_the_release_weight(drifting_cache):
    root, latents, embeds = drifting_cache
    pipe = CogVideoXPipeline.from_pretrained(root / "model", tokenizer=None, text_encoder=None)
    adapter = get_adapter(pipe)
    m = FinetuneLoss(pipe.transformer, pipe.scheduler, adapter, drift_weight=0.4, drift_mode="normalized", tau=2,
                     drift_weighting="batch_mean")
    _, _, drift, _, _, _ = m(latents[:4], embeds[:4], seed=7)
    tf = adapter.training_forward(pipe.transformer, pipe.scheduler, latents[:4], embeds[:4],
                                  generator=torch.Generator().manual_seed(7))
    sigma2 = 1 - tf.noise_level.alpha_bar  # σ² of x_t = √ᾱ·x0 + √(1 − ᾱ)·ε
    assert len(set(tf.timesteps.tolist())) > 1  # the batch mean differs from each sample's weight
    weight = (1 - sigma2).clamp_min(0).mean()
    terms = drift_loss_terms(tf.x0_pred, latents[:4], tau=2)
    assert torch.allclose(drift, weight * terms.per_sample.mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="drift_weighting"):
        FinetuneLoss(pipe.transformer, pipe.scheduler, adapter, 0.4, "normalized", 2, drift_weighting="max")


def test_release_recipe_trains_lora_and_predictor_in_one_run(drifting_cache, tmp_path):
    import yaml

    from lamo.convert import load_release
    from lamo.pipelines import LaMoCogVideoXPipeline

    root, latents, embeds = drifting_cache
    out = tmp_path / "release"
    assert main(["train", "finetune", "--model", str(root / "model"), "--cache", str(root / "cache"),
                 "--recipe", "lamo-release", "--steps", "3", "--batch-size", "2", "--lora-rank", "4", "--lora-alpha", "2",
                 "--prior-options", "hidden_channels=16,num_blocks=1,cond_dim=8", "--save-every", "3",
                 "--log-with", "none", "--out", str(out)]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["lr"], cfg["drift_weighting"], cfg["prior_preset"], cfg["prior_lr"], cfg["prior_lr_schedule"]) == \
        (5e-5, "batch_mean", "release", 5e-4, "release-cosine")
    log = [json.loads(x) for x in (out / "loss.jsonl").read_text().splitlines()]
    assert len(log) == 3 and all(r["prior_loss"] > 0 for r in log)
    assert {p.name for p in (out / "lora").iterdir()} == {"pytorch_lora_weights.safetensors", "predictor.safetensors"}
    pipe = LaMoCogVideoXPipeline.from_pretrained(root / "model", tokenizer=None, text_encoder=None)
    prior = load_release(pipe, out / "lora")  # the sampling side: LoRA + predictor from one folder
    assert prior.config.arch == "release" and prior.config.tau == 1
    assert prior.output_proj.weight.abs().sum() > 0  # the predictor trained (its output conv starts at zero)
    trained = MotionPrior.from_pretrained(out / "prior")
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), prior.state_dict().values()))
    scales = {s["lamo-release"] for mod in pipe.transformer.modules() if isinstance(s := getattr(mod, "scaling", None), dict)
              and "lamo-release" in s}
    assert scales == {0.5}  # alpha 2 / rank 4, read from the file (not re-scaled by load_release)


def test_joint_predictor_run_resumes_to_the_same_weights(drifting_cache, tmp_path):
    root, _, _ = drifting_cache
    common = ["train", "finetune", "--model", str(root / "model"), "--cache", str(root / "cache"), "--lora-rank", "4",
              "--steps", "4", "--batch-size", "2", "--save-every", "2", "--log-with", "none", "--prior-preset", "release",
              "--prior-options", "hidden_channels=16,num_blocks=1,cond_dim=8", "--drift-weighting", "batch_mean"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    assert main(common + ["--out", str(tmp_path / "b"), "--max-steps-this-run", "2"]) == 0  # stopped at step 2
    assert main(common + ["--out", str(tmp_path / "b"), "--resume-from-checkpoint", "latest"]) == 0
    a = MotionPrior.from_pretrained(tmp_path / "a" / "prior").state_dict()
    b = MotionPrior.from_pretrained(tmp_path / "b" / "prior").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
