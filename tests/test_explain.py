"""Drift and field heatmaps concentrate on the moving ball of a physics-world clip."""
import numpy as np
import torch

from lamo import MotionPrior
from lamo.demo import PatchAutoencoder
from lamo.demo.run import fit_prior
from lamo.explain import drift_heatmap, field_heatmap, render_overlay
from lamo.physics.dataset import clip_seed, make_clip
from lamo.physics.tracker import track
from lamo.physics.world import get_world_config

WORLD = get_world_config("tiny")


def _latents(ae, clips):
    v = torch.from_numpy(np.stack([c.frames for c in clips])).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)
    return ae.encode(v).latent_dist.sample().permute(0, 2, 1, 3, 4)  # (N, F, C, h, w)


def _mass_near_ball(heat, clip, tau=2, patch=4, t_ratio=2):
    """Concentration of each map's mass near the ball: the share of the mass within 1.5 latent cells of
    where the ball is at the start or the end of the τ-lag (tracked in the video), divided by the share
    of the area that region covers (1 = spread uniformly)."""
    tr = track(clip.frames)
    ys, xs = np.mgrid[: heat.shape[1], : heat.shape[2]]
    ratios = []
    for i in range(heat.shape[0]):
        near = np.zeros_like(heat[i], bool)
        for t in range(i * t_ratio, min((i + tau + 1) * t_ratio, tr.visible.shape[0])):
            for k in np.flatnonzero(tr.visible[t]):
                x, y = tr.positions[t, k] / patch
                near |= (np.abs(xs + 0.5 - x) <= 1.5) & (np.abs(ys + 0.5 - y) <= 1.5)
        if heat[i].sum() == 0 or not near.any():
            continue
        ratios.append(heat[i][near].sum() / heat[i].sum() / near.mean())
    return float(np.mean(ratios))


def test_heatmaps_concentrate_on_the_moving_ball():
    torch.manual_seed(0)
    clips = [make_clip(WORLD, clip_seed(7, i), scenario="throw") for i in range(96)]  # one ball in flight
    ae = PatchAutoencoder(latent_channels=32).fit(
        torch.from_numpy(np.stack([c.frames for c in clips])).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3))
    z = _latents(ae, clips)
    prior = MotionPrior.from_preset("tiny", latent_channels=32, text_embed_dim=8, tau=2)  # the drift map's lag
    cond = torch.zeros(len(clips), 8)
    assert fit_prior(prior, z[:80], cond[:80], steps=100, batch=16, lr=3e-3)["val_cosine"] > 0.6
    held_out = range(84, 96)  # clips the prior did not train on
    d = [drift_heatmap(z[i]) for i in held_out]
    f = [field_heatmap(prior, z[i], cond[:1]) for i in held_out]
    assert d[0].shape == f[0].shape == (6, 8, 8) and 0 <= d[0].min() and d[0].max() <= 1 and f[0].max() <= 1
    # the drift map lights up around the ball (≥ 2.5× its area share) …
    assert np.mean([_mass_near_ball(h, clips[i]) for h, i in zip(d, held_out)]) > 2.5
    # … and so does the prior's field, background subtracted (≥ 1.8×; measured ≈ 2.2)
    assert np.mean([_mass_near_ball(h, clips[i]) for h, i in zip(f, held_out)]) > 1.8
    assert _mass_near_ball(np.ones_like(f[0]), clips[84]) == 1.0  # (a uniform map scores 1)
    over = render_overlay(clips[84].frames, f[0])
    assert over.shape == (6, 32, 32, 3) and over.dtype == np.uint8


def test_explain_cli_writes_an_animation_and_a_contact_sheet(tmp_path):
    from lamo.cli import main
    from lamo.demo.model import build_demo_pipeline, DEMO_PRESETS
    from lamo.video_io import write_video

    small = get_world_config("tiny", size=16, frames=8, radius=(1.5, 2.0))
    clips = [make_clip(small, clip_seed(8, i)) for i in range(8)]
    pipe = build_demo_pipeline("test", ["ball"])  # a toy CogVideoX whose PCA VAE defines the latent space
    pipe.vae.fit(torch.from_numpy(np.stack([c.frames for c in clips])).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3))
    pipe.save_pretrained(tmp_path / "model")
    write_video(tmp_path / "clip.mp4", clips[0].frames)
    prior = MotionPrior.from_preset("tiny", latent_channels=DEMO_PRESETS["test"].latent_channels,
                                    text_embed_dim=DEMO_PRESETS["test"].text_dim,
                                    backbone="cogvideox-demo")
    torch.nn.init.normal_(prior.conv_out.weight, std=0.1)
    prior.save_pretrained(tmp_path / "prior")
    assert main(["explain", str(tmp_path / "clip.mp4"), "--model", str(tmp_path / "model"), "--prior",
                 str(tmp_path / "prior"), "--prompt", "a ball", "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "heatmaps.gif").stat().st_size > 0
    assert (tmp_path / "x" / "contact_sheet.png").stat().st_size > 0

def test_explain_cli_explains_a_missing_video(tmp_path, capsys):
    from lamo.cli import main

    assert main(["explain", str(tmp_path / "missing.mp4"), "--model", str(tmp_path)]) == 2
    assert "no such video file" in capsys.readouterr().err
