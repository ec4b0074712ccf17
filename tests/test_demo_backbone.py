"""The demo's latent space and backbone trainer (tiny sizes)."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lamo.demo import PatchAutoencoder
from lamo.demo.model import build_demo_pipeline, build_tokenizer, caption_vocabulary
from lamo.demo.train_backbone import BackboneTrainConfig, train_backbone
from lamo.video_io import write_video


def moving_discs(n, frames=8, size=16, seed=0):
    """(n, frames, size, size, 3) uint8 clips of one coloured disc moving in a straight line."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:size, :size]
    clips, right = [], []
    for _ in range(n):
        cy, cx = rng.uniform(4, size - 4, 2)
        vy, vx = rng.uniform(-1, 1, 2)
        col = rng.uniform(0.3, 1, 3)
        fr = [np.clip(2.5 - np.hypot(ys - cy - vy * t, xs - cx - vx * t), 0, 1)[..., None] * col for t in range(frames)]
        clips.append((np.stack(fr) * 255).round().astype(np.uint8))
        right.append(vx > 0)
    return np.stack(clips), right


def test_autoencoder_round_trip_and_pipeline_interface():
    clips, _ = moving_discs(32)
    v = torch.from_numpy(clips).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)  # (N, 3, T, H, W)
    ae = PatchAutoencoder(latent_channels=8, patch_size=4, temporal_compression_ratio=2).fit(v)
    z = ae.encode(v).latent_dist.sample()
    assert z.shape == (32, 8, 4, 4, 4)
    assert abs(z.std().item() - 1.0) < 1e-3  # unit-variance latents
    rec = ae.decode(z).sample
    assert rec.shape == v.shape
    # The decoded clip is close to the input (mean absolute error in [-1, 1] pixel units).
    assert (rec - v).abs().mean().item() < 0.05
    assert len(ae.config.block_out_channels) == 3  # CogVideoXPipeline reads a ×4 spatial factor
    with pytest.raises(ValueError, match="does not tile"):
        ae.encode(v[:, :, :7])
    with pytest.raises(ValueError, match="expected latents"):
        ae.decode(z[:, :4])


def test_word_level_tokenizer_pads_like_t5():
    tok = build_tokenizer(caption_vocabulary(["A red ball bounces.", "a blue ball"]))
    ids = tok("a red ball flies", padding="max_length", max_length=8).input_ids
    assert ids[-3:] == [0, 0, 0] and ids[4] == 1  # pads are 0, </s> = 1 ends the text
    assert ids[3] == tok.unk_token_id  # "flies" is not in the vocabulary


def _dataset(tmp_path, n=12):
    clips, right = moving_discs(n)
    rows = []
    for i, (c, r) in enumerate(zip(clips, right)):
        write_video(tmp_path / "data" / "videos" / f"{i:06d}.mp4", c)
        rows.append({"video": f"videos/{i:06d}.mp4", "caption": f"a ball moves {'right' if r else 'left'}"})
    (tmp_path / "data" / "videos" / "bad.mp4").write_bytes(b"not a video")
    rows.append({"video": "videos/bad.mp4", "caption": "a ball moves left"})
    (tmp_path / "data" / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return tmp_path / "data"


def test_trainer_resumes_to_the_same_weights_and_saves_a_pipeline(tmp_path):
    data = _dataset(tmp_path)
    base = dict(data=str(data), preset="test", batch_size=4, save_every=5, steps=10, seed=3)
    straight = train_backbone(BackboneTrainConfig(out=str(tmp_path / "a"), **base))
    train_backbone(BackboneTrainConfig(out=str(tmp_path / "b"), **{**base, "steps": 5}))
    resumed = train_backbone(BackboneTrainConfig(out=str(tmp_path / "b"), **base))  # continues at step 5
    a = load_file(straight / "transformer" / "diffusion_pytorch_model.safetensors")
    b = load_file(resumed / "transformer" / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(x) for x in (tmp_path / "b" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [5, 10]

    from diffusers import CogVideoXPipeline

    pipe = CogVideoXPipeline.from_pretrained(straight)
    out = pipe(prompt="a ball moves left", num_frames=7, height=16, width=16, num_inference_steps=2,
               max_sequence_length=12, output_type="np", generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, 8, 16, 16, 3)


def test_missing_dataset_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="lamo data physics"):
        train_backbone(BackboneTrainConfig(data=str(tmp_path), out=str(tmp_path / "o"), preset="test"))


def test_demo_pipeline_is_a_stock_cogvideox_pipeline():
    from diffusers import CogVideoXPipeline, CogVideoXTransformer3DModel

    pipe = build_demo_pipeline("test", ["ball"])
    assert type(pipe) is CogVideoXPipeline and isinstance(pipe.transformer, CogVideoXTransformer3DModel)
    assert pipe.vae_scale_factor_spatial == 4 and pipe.vae_scale_factor_temporal == 2


def test_drift_loss_fine_tune_starts_from_a_trained_pipeline(tmp_path):
    data = _dataset(tmp_path)
    base = train_backbone(BackboneTrainConfig(data=str(data), out=str(tmp_path / "base"), preset="test",
                                              batch_size=4, save_every=5, steps=5))
    tuned = train_backbone(BackboneTrainConfig(data=str(data), out=str(tmp_path / "mdl"), preset="test", batch_size=4,
                                               save_every=3, steps=3, init_from=str(base), drift_weight=0.4, lr=1e-3,
                                               train_text_encoder=False))
    log = [json.loads(x) for x in (tmp_path / "mdl" / "loss.jsonl").read_text().splitlines()]
    assert log[-1]["drift"] > 0 and np.isfinite(log[-1]["drift"])
    plain = [json.loads(x) for x in (tmp_path / "base" / "loss.jsonl").read_text().splitlines()]
    assert plain[-1]["drift"] == 0.0  # no drift term unless asked for
    a = load_file(base / "transformer" / "diffusion_pytorch_model.safetensors")
    b = load_file(tuned / "transformer" / "diffusion_pytorch_model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)
    te_a = load_file(base / "text_encoder" / "model.safetensors")
    te_b = load_file(tuned / "text_encoder" / "model.safetensors")
    assert all(torch.equal(te_a[k], te_b[k]) for k in te_a)  # the text space is kept
    assert (tuned / "vae" / "config.json").is_file() and (tuned / "tokenizer").is_dir()


def test_train_backbone_cli_parses_booleans():
    from lamo.cli import build_parser

    a = build_parser().parse_args(["demo", "train-backbone", "--data", "d", "--train-text-encoder", "no",
                                   "--drift-weight", "0.4"])
    assert a.train_text_encoder is False and a.drift_weight == 0.4
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "train-backbone", "--data", "d", "--train-text-encoder", "maybe"])


@pytest.mark.parametrize("mode, weighting", [("batch_normalized", "per_sample"), ("floor_normalized", "batch_mean")])
def test_drift_fine_tune_takes_a_drift_mode_and_logs_both_terms(tmp_path, mode, weighting):
    data = _dataset(tmp_path)
    base = train_backbone(BackboneTrainConfig(data=str(data), out=str(tmp_path / "base"), preset="test",
                                              batch_size=4, save_every=2, steps=2))
    tuned = train_backbone(BackboneTrainConfig(data=str(data), out=str(tmp_path / "mdl"), preset="test", batch_size=4,
                                               save_every=2, steps=2, init_from=str(base), drift_weight=0.4,
                                               drift_mode=mode, drift_weighting=weighting, train_text_encoder=False))
    log = [json.loads(x) for x in (tmp_path / "mdl" / "loss.jsonl").read_text().splitlines()]
    assert log[-1]["drift"] > 0 and log[-1]["denoise"] > 0
    assert log[-1]["loss"] == pytest.approx(log[-1]["denoise"] + 0.4 * log[-1]["drift"], rel=1e-5)
    cfg = json.loads((tuned / "lamo_demo.json").read_text())["train"]
    assert cfg["drift_mode"] == mode and cfg["drift_weighting"] == weighting


def test_bad_drift_mode_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="batch_normalized"):
        train_backbone(BackboneTrainConfig(data=str(tmp_path), out=str(tmp_path / "o"), preset="test", drift_mode="l1"))
    with pytest.raises(ValueError, match="per_sample or batch_mean"):
        train_backbone(BackboneTrainConfig(data=str(tmp_path), out=str(tmp_path / "o"), preset="test",
                                           drift_weighting="sometimes"))
    from lamo.cli import build_parser

    a = build_parser().parse_args(["demo", "train-backbone", "--data", "d", "--drift-mode", "batch_normalized"])
    assert a.drift_mode == "batch_normalized" and a.drift_weighting == "per_sample"


def test_conv_autoencoder_learns_the_clips_and_quacks_like_a_vae():
    from lamo.demo import ConvAutoencoder
    from lamo.demo.train_backbone import _pixels, train_conv_autoencoder

    clips, _ = moving_discs(48, seed=4)
    ae = ConvAutoencoder(latent_channels=8, hidden=8)
    x = _pixels(clips[-8:])
    with torch.no_grad():
        before = float(((ae.decode(ae.encode(x).latent_dist.sample()).sample - x) ** 2).mean())
    torch.manual_seed(0)
    stats = train_conv_autoencoder(ae, clips, BackboneTrainConfig(ae_steps=60, ae_batch_size=8, ae_lr=3e-3),
                                   torch.device("cpu"))
    assert stats["held_mse"] < 0.5 * before, (stats, before)
    z = ae.encode(_pixels(clips[:16])).latent_dist.sample()
    assert z.shape == (16, 8, 4, 4, 4)  # (B, C, F = 8 frames / 2, 16 px / 4, 16 px / 4)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05  # calibrated like a VAE's latents
    y = ae.decode(z).sample
    assert y.shape == (16, 3, 8, 16, 16) and y.min() >= -1 and y.max() <= 1
    with pytest.raises(ValueError, match="pixel channels"):
        ae.encode(torch.zeros(1, 4, 8, 16, 16))
    with pytest.raises(ValueError, match="expected latents"):
        ae.decode(torch.zeros(1, 3, 4, 4, 4))


def test_conv_backbone_resumes_exactly_and_exports_graded_checkpoints(tmp_path):
    data = _dataset(tmp_path)
    base = dict(data=str(data), preset="test-conv", batch_size=4, save_every=5, steps=10, seed=3, ae_steps=4,
                ae_batch_size=4, export_steps="4,10")
    straight = train_backbone(BackboneTrainConfig(out=str(tmp_path / "a"), **base))
    train_backbone(BackboneTrainConfig(out=str(tmp_path / "b"), **{**base, "steps": 5}))
    resumed = train_backbone(BackboneTrainConfig(out=str(tmp_path / "b"), **base))  # continues at step 5
    for part in ("transformer", "vae"):
        a = load_file(next((straight / part).glob("*.safetensors")))
        b = load_file(next((resumed / part).glob("*.safetensors")))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    early = tmp_path / "a" / "pipeline-step-4"
    assert json.loads((early / "lamo_demo.json").read_text())["step"] == 4
    e = load_file(early / "transformer" / "diffusion_pytorch_model.safetensors")
    f = load_file(tmp_path / "a" / "pipeline-step-10" / "transformer" / "diffusion_pytorch_model.safetensors")
    a = load_file(straight / "transformer" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(a[k], f[k]) for k in a) and not all(torch.equal(e[k], f[k]) for k in e)

    from diffusers import CogVideoXPipeline

    from lamo.demo import ConvAutoencoder

    pipe = CogVideoXPipeline.from_pretrained(straight)
    assert isinstance(pipe.vae, ConvAutoencoder)
    out = pipe(prompt="a ball moves left", num_frames=7, height=16, width=16, num_inference_steps=2,
               max_sequence_length=12, output_type="np", generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, 8, 16, 16, 3)


def test_world_data_spec_simulates_the_dataset_clips(tmp_path):
    from lamo.errors import InputError
    from lamo.demo.train_backbone import world_clips
    from lamo.physics.dataset import clip_seed, make_clip
    from lamo.physics.world import get_world_config

    v, caps = world_clips("world:tiny:3:7", frames=16, size=32, workers=1)
    ref = make_clip(get_world_config("tiny"), clip_seed(7, 2))
    assert v.shape == (3, 16, 32, 32, 3) and np.array_equal(v[2], ref.frames) and caps[2] == ref.caption
    for bad in ("world:tiny", "world:nope:3", "world:tiny:x", "world:tiny:0"):
        with pytest.raises(InputError, match="world:PRESET:N|preset must be"):
            world_clips(bad, frames=16, size=32)
    with pytest.raises(InputError, match="needs 8 frames of 16"):
        world_clips("world:tiny:2", frames=8, size=16)


def test_stop_at_keeps_the_schedule_and_a_later_run_finishes_it(tmp_path):
    data = _dataset(tmp_path)
    base = dict(data=str(data), preset="test", batch_size=4, save_every=5, steps=10, seed=3)
    full = train_backbone(BackboneTrainConfig(out=str(tmp_path / "a"), export_steps="5", **base))
    part = train_backbone(BackboneTrainConfig(out=str(tmp_path / "b"), stop_at=5, **base))
    weights = lambda folder: load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors")  # noqa: E731
    a5, b5 = weights(tmp_path / "a" / "pipeline-step-5"), weights(part)
    assert all(torch.equal(a5[k], b5[k]) for k in a5)
    assert json.loads((part / "lamo_demo.json").read_text())["step"] == 5
    rest = train_backbone(BackboneTrainConfig(out=str(tmp_path / "b"), **base))  # resumes at 5, ends at 10
    a, b = weights(full), weights(rest)
    assert all(torch.equal(a[k], b[k]) for k in a)
