"""Prior quality (lamo.prior_quality, `lamo eval prior`): counterfactual constructors, win-rate statistics,
a trained prior against an untrained one on constant-drift latents, the world path on the shipped backbone."""
import argparse
import json

import numpy as np
import pytest
import torch
from scipy.stats import binomtest
from safetensors.torch import save_file

from lamo.commands._eval_prior import register_eval_prior
from lamo.demo.run import DEFAULT_BACKBONE, fit_prior
from lamo.physics.dataset import clip_seed, make_clip
from lamo.physics.world import get_world_config
from lamo.prior import MotionPrior
from lamo.prior_quality import (
    GENERIC_COUNTERFACTUALS, PHYSICS_COUNTERFACTUALS, frame_index, latent_counterfactual, prior_quality,
    win_interval, world_counterfactual_frames,
)

N, F, C, H, W, D = 48, 6, 4, 4, 4, 8


def drift_clips(n=N, seed=0, static=0):
    """Clips ``z_f = base + f·v`` with a constant drift ``v ∈ R^C`` per clip, and ``v`` (zero-padded to D) as
    the condition — the motion a prior can learn from the prompt alone. The last ``static`` clips don't move."""
    g = torch.Generator().manual_seed(seed)
    v = 0.5 * torch.randn(n, C, generator=g)
    if static:
        v[-static:] = 0
    base = torch.randn(n, 1, C, H, W, generator=g)
    z = base + torch.arange(F, dtype=torch.float32)[None, :, None, None, None] * v[:, None, :, None, None]
    return z, torch.cat([v, torch.zeros(n, D - C)], 1)  # (n, F, C, H, W), (n, D)


def untrained(**kw):
    return MotionPrior.from_preset("tiny", latent_channels=C, text_embed_dim=D, **kw)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    prior = untrained(tau=2)
    z, c = drift_clips(n=256, seed=1)  # enough clips to learn the drift from the prompt, not memorise it
    stats = fit_prior(prior, z, c, steps=300, batch=16, lr=3e-3, seed=0)
    return prior, stats


# ------------------------------------------------------------------------------- constructors
def test_frame_index_of_each_generic_counterfactual():
    assert frame_index("reversed", 5).tolist() == [4, 3, 2, 1, 0]
    assert frame_index("frozen", 4).tolist() == [0, 0, 0, 0]
    assert frame_index("dropped", 5).tolist() == [0, 2, 4, 4, 4]  # every other frame, the last kept one held
    assert frame_index("dropped", 6).tolist() == [0, 2, 4, 4, 4, 4]
    assert frame_index("doubled", 5).tolist() == [0, 0, 1, 1, 2]
    for s in range(20):
        perm = frame_index("shuffled", 3, np.random.default_rng(s))
        assert sorted(perm.tolist()) == [0, 1, 2] and perm.tolist() != [0, 1, 2]
    with pytest.raises(ValueError, match="'dropped'.*at least 3"):
        frame_index("dropped", 2)
    with pytest.raises(ValueError, match="unknown generic counterfactual"):
        frame_index("gravity_flipped", 5)


def test_latent_counterfactuals_move_whole_frames_and_shuffle_per_clip_whatever_the_batching():
    z = torch.arange(3 * 5, dtype=torch.float32).view(3, 5, 1, 1, 1).expand(3, 5, 2, 2, 2).clone()  # value = 5·n + f
    rev = latent_counterfactual(z, "reversed")
    assert torch.equal(rev, z.flip(1))
    assert torch.equal(latent_counterfactual(z, "frozen"), z[:, :1].expand_as(z))
    assert latent_counterfactual(z, "doubled")[1, :, 0, 0, 0].tolist() == [5, 5, 6, 6, 7]
    sh = latent_counterfactual(z, "shuffled", seed=3)
    for n in range(3):
        assert sorted(sh[n, :, 0, 0, 0].tolist()) == z[n, :, 0, 0, 0].tolist() and not torch.equal(sh[n], z[n])
    # clip 2 gets the same permutation alone (start=2) as in the batch
    assert torch.equal(latent_counterfactual(z[2:], "shuffled", seed=3, start=2)[0], sh[2])


def test_world_counterfactuals_in_pixel_space():
    world = get_world_config("tiny")
    clip = make_clip(world, clip_seed(5, 0), "throw")
    T = world.frames
    assert np.array_equal(world_counterfactual_frames(world, clip, "reversed"), clip.frames[::-1])
    assert np.array_equal(world_counterfactual_frames(world, clip, "frozen"), np.repeat(clip.frames[:1], T, 0))
    dropped = world_counterfactual_frames(world, clip, "dropped")  # the same clip simulated 2·T frames long
    assert dropped.shape == clip.frames.shape
    assert np.array_equal(dropped[: T // 2], clip.frames[::2])
    assert not np.array_equal(dropped[T // 2:], np.repeat(dropped[T // 2 - 1:T // 2], T - T // 2, 0))  # nothing held
    assert not np.array_equal(world_counterfactual_frames(world, clip, "gravity_flipped"), clip.frames)
    # every family (scenario drawn from the seed): re-simulated from the clip's own first frame
    for i in range(12):
        clip = make_clip(world, clip_seed(5, i))
        assert np.array_equal(world_counterfactual_frames(world, clip, "dropped")[: T // 2], clip.frames[::2])
        for name in PHYSICS_COUNTERFACTUALS:
            f = world_counterfactual_frames(world, clip, name)
            assert f.shape == clip.frames.shape and f.dtype == np.uint8
            assert np.array_equal(f[:4], clip.frames[:4]), (i, name)  # the same start (every change is at ≥ T/3)
    with pytest.raises(ValueError, match="does not reproduce it"):
        world_counterfactual_frames(get_world_config("tiny", gravity=0.2), clip, "dropped")


# ------------------------------------------------------------------------------- statistics
def test_win_interval_is_the_exact_binomial_interval_and_extends_to_half_wins():
    for k, n in [(0, 10), (3, 10), (10, 10), (37, 64)]:
        ci = binomtest(k, n).proportion_ci(0.95, method="exact")
        assert np.allclose(win_interval(k, n), (ci.low, ci.high), atol=1e-9)
    lo, hi = win_interval(3.5, 10)
    assert win_interval(3, 10)[0] < lo < win_interval(4, 10)[0] and win_interval(3, 10)[1] < hi < win_interval(4, 10)[1]


def test_an_untrained_prior_scores_exactly_the_zero_field_reference():
    """A zero-initialised prior predicts f ≡ 0: reversed clips tie (win rate exactly 0.5, ties count half);
    frozen and ½-speed clips have less motion energy and always win; every row equals the reference."""
    z, c = drift_clips()
    res = prior_quality(untrained(tau=2), z, c)
    assert res.n == N and res.cosine == 0.0
    rev = res.row("reversed")
    assert (rev.win_rate, rev.ties, rev.n) == (0.5, N, N) and rev.p_value == 1.0
    assert res.row("frozen").win_rate == 0.0 and res.row("doubled").win_rate == 0.0
    assert res.row("dropped").win_rate == 1.0  # the held tail halves the pairs but doubles the step
    for r in res.rows:
        assert r.win_rate == r.reference_win_rate and r.ci == r.reference_ci, r.name
    assert [r.name for r in res.rows] == list(GENERIC_COUNTERFACTUALS)


def test_a_trained_prior_ranks_real_clips_above_frozen_and_reversed(trained):
    prior, stats = trained
    z, c = drift_clips(seed=2)  # clips it never saw
    res = prior_quality(prior, z, c)
    assert res.cosine > 0.8, res.table()
    for name in ("frozen", "reversed", "shuffled"):
        r = res.row(name)
        assert r.win_rate > 0.75 and r.ci[0] > 0.5 and r.p_value < 1e-3, res.table()
        assert r.ratio > 1
    assert res.row("frozen").reference_win_rate == 0.0  # what the prior learnt: from 0 % to > 75 %
    # the cosine is the one MotionPrior.training_loss reports (eval mode)
    with torch.no_grad():
        assert res.cosine == pytest.approx(float(prior.training_loss(z, c).cosine.mean()), abs=1e-5)
    # batching and the shuffle seed's use per clip do not change the result
    again = prior_quality(prior, z, c, batch_size=7)
    assert [(r.wins, r.ties, r.losses) for r in again.rows] == [(r.wins, r.ties, r.losses) for r in res.rows]
    assert "frozen" in res.table() and "dropped: 2× speed" in res.table()


def test_clips_whose_counterfactual_is_themselves_are_left_out():
    z, c = drift_clips(static=5)
    res = prior_quality(untrained(tau=1), z, c, ["frozen", "reversed"])
    frozen = res.row("frozen")
    assert (frozen.n, frozen.n_same) == (N - 5, 5)
    assert res.row("reversed").n_same == 5  # a still clip played backwards is the same clip


def test_clear_errors():
    z, c = drift_clips(n=4)
    prior = untrained(tau=2)
    with pytest.raises(ValueError, match="needs at least 3"):
        prior_quality(prior, z[:, :2], c)  # τ = 2 needs 3 latent frames
    with pytest.raises(ValueError, match="'dropped' counterfactual needs at least 3 frames"):
        prior_quality(untrained(tau=1), z[:, :2], c, ["reversed", "dropped"])
    with pytest.raises(ValueError, match="N = 4 clips"):
        prior_quality(prior, z, c[:3])
    with pytest.raises(ValueError, match="text embedding width"):
        prior_quality(prior, z, torch.zeros(4, D + 1))
    with pytest.raises(ValueError, match="5 dimensions"):
        prior_quality(prior, z[0], c)
    with pytest.raises(ValueError, match="channels"):
        prior_quality(prior, z[:, :, :2], c)
    bad = z.clone()
    bad[1, 2, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        prior_quality(prior, bad, c)
    with pytest.raises(ValueError, match="physics world"):
        prior_quality(prior, z, c, ["reversed", "gravity_flipped"])
    with pytest.raises(ValueError, match="unknown counterfactual"):
        prior_quality(prior, z, c, ["backwards"])


# ------------------------------------------------------------------------------- command line
def _parser():
    parser = argparse.ArgumentParser(prog="lamo eval")
    register_eval_prior(parser.add_subparsers(dest="eval_command"))
    return parser


def _fake_cache(folder, z, c):
    """A cache folder as `lamo cache` writes it (two shards), read back by CachedLatentDataset."""
    folder.mkdir()
    shards = []
    for k, (a, b) in enumerate([(0, 5), (5, len(z))]):
        save_file({"latents": z[a:b].contiguous(), "pooled": c[a:b].contiguous(), "index": torch.arange(a, b)},
                  str(folder / f"shard-{k:05d}.safetensors"))
        shards.append({"shard": k, "file": f"shard-{k:05d}.safetensors", "n": b - a,
                       "captions": [f"clip {i}" for i in range(a, b)], "skipped": []})
    (folder / "manifest.json").write_text(json.dumps({"family": "test", "shards": shards, "complete": True}))


def test_cli_on_a_latent_cache(tmp_path, capsys, trained):
    prior, _ = trained
    prior.save_pretrained(tmp_path / "prior")
    z, c = drift_clips(n=12, seed=3)
    _fake_cache(tmp_path / "cache", z, c)
    args = _parser().parse_args(["prior", "--prior", str(tmp_path / "prior"), "--cache", str(tmp_path / "cache"),
                                 "-n", "10", "--counterfactuals", "frozen,reversed", "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "validation cosine" in out and "frozen" in out and "table.json" in out
    table = json.loads((tmp_path / "out" / "table.json").read_text())
    assert table["n"] == 10 and [r["name"] for r in table["rows"]] == ["frozen", "reversed"]
    assert table["rows"][0]["win_rate"] == prior_quality(prior, z[:10], c[:10], ["frozen"]).rows[0].win_rate
    assert (tmp_path / "out" / "prior_quality.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):  # --cache and --world together
        _parser().parse_args(["prior", "--prior", "p", "--cache", "c", "--world", "--out", "o"])
    with pytest.raises(SystemExit):  # neither
        _parser().parse_args(["prior", "--prior", "p", "--out", "o"])
    args = _parser().parse_args(["prior", "--prior", str(tmp_path / "prior"), "--cache", str(tmp_path / "cache"),
                                 "--backbone", "x", "--out", str(tmp_path / "o2")])
    with pytest.raises(ValueError, match="--backbone goes with --world"):
        args.func(args)
    args = _parser().parse_args(["prior", "--prior", str(tmp_path / "prior"), "--cache", str(tmp_path / "none"),
                                 "--out", str(tmp_path / "o3")])
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        args.func(args)


def test_cli_on_the_physics_world_through_the_shipped_backbone(tmp_path, capsys):
    """Four clips of the world, every counterfactual made in pixel space and encoded by the demo backbone's VAE."""
    meta = json.loads((DEFAULT_BACKBONE / "lamo_demo.json").read_text())["preset"]
    prior = MotionPrior.from_preset("tiny", latent_channels=meta["latent_channels"], text_embed_dim=meta["text_dim"],
                                    backbone="cogvideox-demo", tau=2)
    prior.save_pretrained(tmp_path / "prior")
    args = _parser().parse_args(["prior", "--prior", str(tmp_path / "prior"), "--world", "-n", "4", "--batch-size", "3",
                                 "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    table = json.loads((tmp_path / "out" / "table.json").read_text())
    assert table["n"] == 4 and table["cosine"] == 0.0
    rows = {r["name"]: r for r in table["rows"]}
    assert list(rows) == [*GENERIC_COUNTERFACTUALS, *PHYSICS_COUNTERFACTUALS]
    for r in rows.values():
        assert r["space"] == "pixel" and r["n"] + r["n_same"] == 4
        assert r["win_rate"] == r["reference_win_rate"]  # untrained: the zero-field reference
    assert rows["frozen"]["win_rate"] == 0.0
    assert "longer source" in rows["dropped"]["note"]
    assert (tmp_path / "out" / "prior_quality.png").is_file()
    assert "gravity_flipped" in capsys.readouterr().out


def test_lamo_eval_prior_is_wired_into_the_cli():
    from lamo.cli import build_parser

    args = build_parser().parse_args(["eval", "prior", "--prior", "p", "--world", "-n", "4", "--out", "q"])
    assert args.eval_command == "prior" and args.world and args.n == 4 and callable(args.func)
