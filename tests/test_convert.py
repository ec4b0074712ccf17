"""Reading the authors' released predictor (``predictor.safetensors``, ``physical_lamo.*`` keys).

The files here are written by the tests themselves in the released layout (docs/design.md §8): a
``MotionPrior(arch="release")`` with random weights, its keys prefixed ``physical_lamo.``.
"""
import pytest
import torch
from safetensors.torch import save_file
from tiny_models import COGVIDEOX_LATENT_CHANNELS, TEXT_DIM, tiny_cogvideox_components, tiny_pipeline

from lamo import MotionPrior
from lamo.cli import main
from lamo.convert import RELEASE_PREFIX, convert_release_predictor, load_release, load_release_predictor


def release_like(channels=4, text_dim=8, hidden=16, blocks=2, cond=8, squeeze_excite=True, second_order=False, seed=0):
    torch.manual_seed(seed)
    p = MotionPrior(arch="release", latent_channels=channels, text_embed_dim=text_dim, hidden_channels=hidden,
                    num_blocks=blocks, cond_dim=cond, squeeze_excite=squeeze_excite, second_order=second_order, tau=1)
    with torch.no_grad():
        for prm in p.parameters():
            prm.normal_(0, 0.2)
    return p.eval()


def write_release(prior, folder, rename=None, drop=(), extra=None):
    """``folder/predictor.safetensors`` with the release's key names (``rename`` maps our name → theirs)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in prior.state_dict().items():
        if k in drop:
            continue
        name, value = (rename or (lambda k, v: (k, v)))(k, v)
        state[RELEASE_PREFIX + name] = value.contiguous()
    state.update(extra or {})
    save_file(state, str(folder / "predictor.safetensors"))
    return folder


def assert_same_function(model, actual, expected):
    """``actual`` ≈ ``expected`` up to fp32 summation order: outputs of bitwise-equal weights on equal inputs.

    Not ``torch.equal``: a loaded weight lies at whatever offset the safetensors buffer gives it, and the CPU
    conv kernel may pick another code path, so another order of summation, for a weight that is not 16-byte
    aligned (with one thread the SE's 1×1 convs on ``(N, D, 1, 1)`` do, and move by ~1e-8). Reordering an fp32
    sum of K terms moves it by at most ≈ K·eps·Σ|terms|, so allow K·eps of the output's scale, K the longest
    dot product in the model (3×3 taps × in-channels; the norms' and the SE's means are shorter): ≤ 4e-5 of the
    output's scale here, where the reorder moved it by ~1e-8. A weight that did not load, a transposed or
    reordered one, or weights rounded through fp16/bf16 move it by 10–20000× the tolerance, and any change to
    a weight at all fails the exact state-dict comparison beside this check.
    """
    k = max(m.weight[0].numel() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    atol = k * torch.finfo(expected.dtype).eps * expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol)


def _same_outputs(a, b, second_order=False):
    sa, sb = a.state_dict(), b.state_dict()  # the load itself is exact ...
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    z, c = torch.randn(3, a.config.latent_channels, 6, 5), torch.randn(3, a.config.text_embed_dim)
    prev = torch.randn_like(z) if second_order else None
    with torch.no_grad():  # ... the outputs are up to summation order (see assert_same_function)
        assert_same_function(a, b(z, c, prev_delta=prev), a(z, c, prev_delta=prev))
        assert_same_function(a, b(z, None, prev_delta=prev), a(z, None, prev_delta=prev))  # the null prompt too


@pytest.mark.parametrize("squeeze_excite,second_order", [(True, False), (False, False), (True, True)])
def test_release_file_loads_with_its_sizes_and_outputs(tmp_path, squeeze_excite, second_order):
    ref = release_like(squeeze_excite=squeeze_excite, second_order=second_order)
    prior = load_release_predictor(write_release(ref, tmp_path / "rel"))
    cfg = prior.config
    assert (cfg.arch, cfg.hidden_channels, cfg.num_blocks, cfg.cond_dim, cfg.text_embed_dim, cfg.latent_channels) == \
        ("release", 16, 2, 8, 8, 4)
    assert (cfg.squeeze_excite, cfg.second_order, cfg.tau, cfg.backbone) == (squeeze_excite, second_order, 1, "cogvideox")
    assert (cfg.cosine_weight, cfg.prompt_dropout, cfg.noise_aug, cfg.noise_aug_std) == (0.3, 0.1, "diffusion", 0.3)
    _same_outputs(ref, prior, second_order)


def test_release_key_names_are_the_modules_own():
    keys = set(release_like(blocks=1).state_dict())
    assert keys == {
        "input_proj.weight", "input_proj.bias", "output_proj.weight", "output_proj.bias", "prompt_proj.weight",
        "prompt_proj.bias", "null_prompt",
        *(f"blocks.0.{m}.{p}" for m in ("conv1", "gn1", "film", "conv2", "gn2", "se.fc1", "se.fc2")
          for p in ("weight", "bias")),
    }


def test_sequential_and_linear_spellings_are_mapped(tmp_path):
    ref = release_like()

    def theirs(k, v):
        for m in ("input_proj", "prompt_proj", "output_proj"):
            if k.startswith(m + "."):
                k = k.replace(m + ".", m + ".0.", 1)
        if ".se.fc" in k and k.endswith("weight"):
            v = v[:, :, 0, 0]  # stored as Linear (out, in)
        return k, v

    _same_outputs(ref, load_release_predictor(write_release(ref, tmp_path / "rel", rename=theirs) / "predictor.safetensors"))


def test_what_cannot_be_mapped_is_refused_by_name(tmp_path):
    ref = release_like()
    with pytest.raises(ValueError, match="unknown key.*physical_lamo.blocks.0.extra.weight"):
        load_release_predictor(write_release(ref, tmp_path / "a", extra={RELEASE_PREFIX + "blocks.0.extra.weight":
                                                                        torch.zeros(2)}))
    with pytest.raises(ValueError, match="missing key.*physical_lamo.blocks.1.gn2.bias"):
        load_release_predictor(write_release(ref, tmp_path / "b", drop={"blocks.1.gn2.bias"}))
    with pytest.raises(ValueError, match=r"shape mismatch.*blocks.0.film.weight: file \(32, 9\)"):
        load_release_predictor(write_release(ref, tmp_path / "c", rename=lambda k, v: (k, torch.zeros(32, 9) if k ==
                                                                                        "blocks.0.film.weight" else v)))
    with pytest.raises(ValueError, match="lack the 'physical_lamo.' prefix"):
        load_release_predictor(write_release(ref, tmp_path / "d", extra={"lora.weight": torch.zeros(2)}))
    with pytest.raises(ValueError, match="input_proj takes 5 channels"):
        load_release_predictor(write_release(ref, tmp_path / "e", rename=lambda k, v: (k, torch.zeros(16, 5, 3, 3) if k
                                                                                        == "input_proj.weight" else v)))
    with pytest.raises(FileNotFoundError, match="predictor.safetensors"):
        load_release_predictor(tmp_path / "nothing")


def test_convert_command_writes_a_prior_folder_and_copies_the_lora(tmp_path, capsys):
    ref = release_like()
    src = write_release(ref, tmp_path / "release")
    save_file({"transformer.x.lora_A.weight": torch.zeros(2, 2)}, str(src / "pytorch_lora_weights.safetensors"))
    assert main(["convert", "release-predictor", str(src), str(tmp_path / "out")]) == 0
    assert "arch='release'" in capsys.readouterr().out
    prior = MotionPrior.from_pretrained(tmp_path / "out")
    _same_outputs(ref, prior)
    assert (tmp_path / "out" / "lora" / "pytorch_lora_weights.safetensors").is_file()
    # MotionPrior.from_pretrained reads a release folder directly too
    direct = MotionPrior.from_pretrained(src, torch_dtype=torch.float64)
    assert direct.config.arch == "release" and direct.dtype == torch.float64
    # a file it cannot map: exit code 2 and the reason on stderr
    write_release(ref, tmp_path / "bad", drop={"null_prompt"})
    assert main(["convert", "release-predictor", str(tmp_path / "bad"), str(tmp_path / "out2")]) == 2
    assert "missing key(s) ['physical_lamo.null_prompt']" in capsys.readouterr().err



def test_convert_names_the_family_as_lamo_sample_does(tmp_path, capsys):
    """`--family` (the word `lamo sample` and `lamo share lora` use); `--backbone`, its old name, still works."""
    src = write_release(release_like(), tmp_path / "release")
    assert main(["convert", "release-predictor", str(src), str(tmp_path / "a"), "--family", "wan"]) == 0
    assert MotionPrior.from_pretrained(tmp_path / "a").config.backbone == "wan"
    assert main(["convert", "release-predictor", str(src), str(tmp_path / "b"), "--backbone", "cogvideox"]) == 0
    assert MotionPrior.from_pretrained(tmp_path / "b").config.backbone == "cogvideox"
    assert main(["convert", "release-predictor", str(src), str(tmp_path / "c"), "--family", "sora"]) == 2
    assert "--family" in capsys.readouterr().err and not (tmp_path / "c").exists()

def test_load_release_into_a_pipeline_scales_the_lora_to_alpha_over_rank(tmp_path):
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from lamo.pipelines import LaMoCogVideoXPipeline

    comps = tiny_cogvideox_components()
    donor = comps["transformer"]
    donor.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v",
                                                                                              "to_out.0"]))
    src = write_release(release_like(channels=COGVIDEOX_LATENT_CHANNELS, text_dim=TEXT_DIM), tmp_path / "release")
    LaMoCogVideoXPipeline.save_lora_weights(src, transformer_lora_layers=get_peft_model_state_dict(donor))
    pipe = tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components())
    prior = load_release(pipe, src, lora_alpha=2.0)  # the release: alpha 64 at rank 128; here 2 at rank 4
    assert pipe.motion_prior is prior and prior.config.arch == "release"
    scales = {m.scaling["lamo-release"] for m in pipe.transformer.modules() if hasattr(m, "scaling")
              and "lamo-release" in getattr(m, "scaling", {})}
    assert scales == {0.5}
    convert_release_predictor(src, tmp_path / "converted")  # the converted folder loads the same way
    pipe2 = tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components())
    load_release(pipe2, tmp_path / "converted", lora_alpha=2.0)
    for (k, a), (_, b) in zip(pipe.transformer.state_dict().items(), pipe2.transformer.state_dict().items()):
        assert torch.equal(a, b), k
