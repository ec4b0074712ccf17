import pytest
import torch

import lamo
from lamo import MotionPrior


def tiny_prior(**kw):
    return MotionPrior.from_preset("tiny", latent_channels=4, text_embed_dim=8, **kw)


def assert_same_function(model, actual, expected):
    """``actual`` ≈ ``expected`` up to fp32 summation order: outputs of bitwise-equal weights on equal inputs.

    Not ``torch.equal``: a loaded weight lies at whatever offset the safetensors buffer gives it, and the CPU
    conv kernel may pick another code path, so another order of summation, for a weight that is not 16-byte
    aligned (with one thread the release arch's SE 1×1 convs on ``(N, D, 1, 1)`` do, and move by ~1e-8).
    Reordering an fp32 sum of K terms moves it by at most ≈ K·eps·Σ|terms|, so allow K·eps of the output's
    scale, K the longest dot product in the model (3×3 taps × in-channels; the norms' and the SE's means
    are shorter): ≤ 4e-5 of the output's scale here, where the reorder moved it by ~1e-8. A weight that did
    not load, a transposed or reordered one, or weights rounded through fp16/bf16 move it by 10–20000× the
    tolerance, and any change to a weight at all fails the exact state-dict comparison beside this check.
    """
    k = max(m.weight[0].numel() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    atol = k * torch.finfo(expected.dtype).eps * expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol)


def test_default_size_is_about_10m_parameters():
    p = MotionPrior()
    assert 8.0 < p.num_parameters_m() < 12.0
    assert p.config.latent_channels == 16 and p.config.text_embed_dim == 4096
    assert p.config.tau == 1  # adjacent latent frames: what the physics-world evidence chose (benchmarks/README.md)


def test_zero_init_predicts_zero_motion():
    p = tiny_prior()
    z = torch.randn(2, 5, 4, 6, 6)
    out = p.predict_motion(z, torch.randn(2, 8))
    assert out.shape == (2, 5 - p.config.tau, 4, 6, 6)  # one prediction per pair (i, i + τ)
    assert out.abs().max().item() == 0.0
    assert p(z[:, 0], None).abs().max().item() == 0.0


def test_save_load_round_trip_is_exact(tmp_path):
    p = tiny_prior(backbone="cogvideox")
    for prm in p.parameters():  # make every weight non-trivial
        torch.nn.init.normal_(prm, std=0.1)
    p.save_pretrained(tmp_path / "prior")
    assert (tmp_path / "prior" / "diffusion_pytorch_model.safetensors").is_file()
    assert (tmp_path / "prior" / "config.json").is_file()
    q = MotionPrior.from_pretrained(tmp_path / "prior")
    assert q.config.backbone == "cogvideox" and q.config.tau == p.config.tau
    for (k, a), (k2, b) in zip(p.state_dict().items(), q.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    z, c = torch.randn(3, 4, 5, 5), torch.randn(3, 8)
    with torch.no_grad():  # the weights are exact; the outputs up to summation order (see assert_same_function)
        assert_same_function(p, q(z, c), p(z, c))


def test_missing_or_wrong_checkpoint_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        MotionPrior.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        MotionPrior.from_pretrained(tmp_path / "empty")


def test_bad_inputs_are_explained():
    p = tiny_prior()
    with pytest.raises(ValueError, match="trained for 4-channel latents"):
        p(torch.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match="single latent frames"):
        p(torch.randn(2, 1, 4, 5, 5))
    with pytest.raises(ValueError, match="8-d prompt embeddings"):
        p(torch.randn(2, 4, 5, 5), torch.randn(2, 16))
    with pytest.raises(ValueError, match="another backbone"):
        p.check_compatible(latent_channels=16, text_embed_dim=8)
    with pytest.raises(ValueError, match="unknown prior preset"):
        MotionPrior.from_preset("huge")
    with pytest.raises(ValueError, match="probability"):
        tiny_prior(prompt_dropout=1.5)


def test_null_condition_and_dropout_mask():
    p = tiny_prior()
    torch.nn.init.normal_(p.conv_out.weight, std=0.1)
    for b in p.blocks:
        torch.nn.init.normal_(b.film.weight, std=0.1)
    z, c = torch.randn(2, 4, 5, 5), torch.randn(2, 8)
    null = p(z, None)
    dropped = p(z, c, drop=torch.tensor([True, False]))
    assert torch.allclose(dropped[0], null[0]) and not torch.allclose(dropped[1], null[1])
    assert torch.allclose(p(z, c[:1]), p(z, c[:1].expand(2, -1)))  # a (1, D) condition is shared


def _translating_blobs(n=8, frames=6, size=12, seed=0):
    """Latent clips where a Gaussian blob moves one pixel right per frame (4 channels)."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    clips = []
    for _ in range(n):
        y0, x0 = torch.randint(3, size - 3, (2,), generator=g).tolist()
        fr = [torch.exp(-((ys - y0) ** 2 + (xs - (x0 - 2 + t)) ** 2) / 4.0) for t in range(frames)]
        clip = torch.stack(fr)[:, None].repeat(1, 4, 1, 1)  # (F, C, H, W)
        clips.append(clip)
    return torch.stack(clips)  # (B, F, C, H, W)


def test_training_loss_learns_a_simple_motion():
    torch.manual_seed(0)
    p = tiny_prior()
    z = _translating_blobs()
    cond = torch.randn(z.shape[0], 8)
    opt = torch.optim.Adam(p.parameters(), lr=3e-3)
    p.train()
    first = p.training_loss(z, cond).per_sample.mean().item()
    for _ in range(60):
        loss = p.training_loss(z, cond).per_sample.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    p.eval()
    out = p.training_loss(_translating_blobs(seed=1), torch.randn(8, 8))
    assert out.per_sample.shape == (8,)
    assert out.per_sample.mean().item() < 0.5 * first
    assert out.cosine.mean().item() > 0.8


def test_training_augmentation_is_seeded_and_off_in_eval():
    p = tiny_prior()
    torch.nn.init.normal_(p.conv_out.weight, std=0.1)
    z, c = torch.randn(4, 5, 4, 6, 6), torch.randn(4, 8)
    p.train()
    a = p.training_loss(z, c, generator=torch.Generator().manual_seed(3)).per_sample
    b = p.training_loss(z, c, generator=torch.Generator().manual_seed(3)).per_sample
    d = p.training_loss(z, c, generator=torch.Generator().manual_seed(4)).per_sample
    assert torch.equal(a, b) and not torch.equal(a, d)
    p.eval()
    e = p.training_loss(z, c, generator=torch.Generator().manual_seed(3)).per_sample
    f = p.training_loss(z, c, generator=torch.Generator().manual_seed(4)).per_sample
    assert torch.equal(e, f)  # no dropout / noise augmentation in eval mode


def test_pool_prompt_embeds_masked_mean():
    e = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    m = torch.tensor([[1, 1, 0]])
    assert torch.allclose(lamo.pool_prompt_embeds(e, m), torch.tensor([[2.0, 3.0]]))
    assert torch.allclose(lamo.pool_prompt_embeds(e), e.mean(1))


# ---------------------------------------------------------------------------------------- arch="release"
def tiny_release(**kw):
    return MotionPrior.from_preset("release", latent_channels=4, text_embed_dim=8, hidden_channels=16, num_blocks=2,
                                   cond_dim=8, **kw)


def test_release_preset_is_the_authors_setting():
    p = MotionPrior.from_preset("release")
    cfg = p.config
    assert (cfg.arch, cfg.hidden_channels, cfg.num_blocks, cfg.cond_dim, cfg.squeeze_excite, cfg.second_order) == \
        ("release", 256, 8, 128, True, False)
    assert (cfg.tau, cfg.prompt_dropout, cfg.noise_aug_prob, cfg.noise_aug_std, cfg.noise_aug, cfg.cosine_weight) == \
        (1, 0.1, 0.5, 0.3, "diffusion", 0.3)
    assert p.blocks[0].se.fc1.out_channels == 64 and p.prompt_proj.out_features == 128
    assert tiny_release().blocks[0].se.fc1.out_channels == 4  # max(16 / 4, 4)
    assert MotionPrior(arch="release").config.squeeze_excite is True  # SE defaults on for the release arch
    with pytest.raises(ValueError, match="belong to arch='release'"):
        MotionPrior(squeeze_excite=True)
    with pytest.raises(ValueError, match="unknown arch"):
        MotionPrior(arch="unet")


def test_release_arch_zero_init_round_trip_and_null_prompt(tmp_path):
    p = tiny_release(second_order=True)
    z = torch.randn(2, 5, 4, 6, 6)
    assert p.predict_motion(z, torch.randn(2, 8)).abs().max().item() == 0.0  # zero-initialised output conv
    assert p.null_prompt.abs().max().item() == 0.0 and p.input_proj.in_channels == 8
    for prm in p.parameters():
        torch.nn.init.normal_(prm, std=0.1)
    p.save_pretrained(tmp_path / "r")
    q = MotionPrior.from_pretrained(tmp_path / "r")
    assert q.config.arch == "release" and q.config.second_order
    for (k, a), (k2, b) in zip(p.state_dict().items(), q.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    c = torch.randn(2, 8)
    with torch.no_grad():  # the weights are exact; the outputs up to summation order (see assert_same_function)
        assert_same_function(p, q.predict_motion(z, c), p.predict_motion(z, c))
    # an absent prompt is the learned null prompt; a dropped one is the zero prompt (the release's dropout)
    frames = z[:, 0]
    with torch.no_grad():
        p.null_prompt.copy_(torch.randn(8))
    assert torch.equal(p(frames, None), p(frames, p.null_prompt[None].expand(2, -1)))
    assert torch.equal(p(frames, c, drop=torch.tensor([True, False]))[0], p(frames, torch.zeros(1, 8))[0])
    # second-order: pair i sees Δz_{i−τ} (zero for the first pair)
    field = p.predict_motion(z, c, tau=1)
    prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, 1:4] - z[:, :3]], 1)
    assert torch.allclose(field[:, 2], p(z[:, 2], c, prev_delta=prev[:, 2]), atol=1e-6)
    assert torch.allclose(field[:, 0], p(z[:, 0], c), atol=1e-6)


def test_configs_saved_before_the_release_arch_load_unchanged(tmp_path):
    import json

    p = tiny_prior(backbone="cogvideox")
    for prm in p.parameters():
        torch.nn.init.normal_(prm, std=0.1)
    p.save_pretrained(tmp_path / "old")
    cfg_path = tmp_path / "old" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for k in ("arch", "squeeze_excite", "second_order", "cosine_weight", "noise_aug"):
        cfg.pop(k)
    cfg_path.write_text(json.dumps(cfg))
    q = MotionPrior.from_pretrained(tmp_path / "old")
    assert (q.config.arch, q.config.cosine_weight, q.config.noise_aug) == ("lamo", 0.5, "fixed")
    for (k, a), (k2, b) in zip(p.state_dict().items(), q.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    z, c = torch.randn(3, 4, 5, 5), torch.randn(3, 8)
    with torch.no_grad():  # the weights are exact; the outputs up to summation order (see assert_same_function)
        assert_same_function(p, q(z, c), p(z, c))


def test_release_training_loss_options():
    p = tiny_release(prompt_dropout=0.0)
    with torch.no_grad():
        p.output_proj.weight.normal_(0, 0.1)
    z, c = torch.randn(3, 4, 4, 6, 6), torch.randn(3, 8)
    p.train()
    with pytest.raises(ValueError, match="aug_noise_levels"):
        p.training_loss(z, c)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        p.training_loss(z, c, aug_noise_levels=torch.tensor([0.5, float("nan")]))
    levels = torch.linspace(0.0, 1.0, 50)
    a = p.training_loss(z, c, generator=torch.Generator().manual_seed(0), aug_noise_levels=levels)
    b = p.training_loss(z, c, generator=torch.Generator().manual_seed(0), aug_noise_levels=levels)
    assert torch.equal(a.per_sample, b.per_sample)
    # at ᾱ_t = 1 for every timestep the "diffusion" augmentation adds nothing: the loss of the clean input
    clean = p.training_loss(z, c, generator=torch.Generator().manual_seed(0), aug_noise_levels=torch.zeros(7))
    p.eval()
    e = p.training_loss(z, c)
    assert torch.allclose(clean.per_sample, e.per_sample) and not torch.allclose(a.per_sample, e.per_sample)
    assert torch.allclose(e.per_sample, e.mse + 0.3 * (1 - e.cosine))  # the release's cosine weight
