"""Model CPU offload and VAE slicing / tiling (`lamo sample` / `lamo eval` flags, pipelines' enable_memory_savings).

Slicing and, below the VAE's tile size, tiling leave the maths unchanged: the tiny models give the same video.
Offload needs a GPU: on the CPU it is refused with a message; with a GPU it gives the same video (skipped here
when there is none).
"""
import pytest
import torch
from tiny_models import (COGVIDEOX_LATENT_CHANNELS, SIZE_ARGS, WAN_LATENT_CHANNELS, cogvideox_call_kwargs,
                         random_prompt_embeds, tiny_cogvideox_components, tiny_motion_prior, tiny_pipeline,
                         tiny_wan_components, wan_call_kwargs, write_tiny_sampling_inputs)

import lamo.pipelines.settings as settings
from lamo.cli import main
from lamo.errors import InputError
from lamo.pipelines import LaMoCogVideoXPipeline, LaMoWanPipeline, configure_memory

CASES = {
    "cogvideox": (LaMoCogVideoXPipeline, tiny_cogvideox_components, cogvideox_call_kwargs, COGVIDEOX_LATENT_CHANNELS),
    "wan": (LaMoWanPipeline, tiny_wan_components, wan_call_kwargs, WAN_LATENT_CHANNELS),
}


def video(pipe, family, **memory):
    cls, _, call_kwargs, channels = CASES[family]
    if memory:
        pipe.enable_memory_savings(**memory)
    prior = tiny_motion_prior(channels, backbone=family)
    return pipe(prompt_embeds=random_prompt_embeds(2, seed=1), negative_prompt_embeds=random_prompt_embeds(2, seed=2),
                generator=torch.Generator().manual_seed(0), motion_prior=prior, motion_guidance_scale=1.0,
                **call_kwargs(output_type="np", num_inference_steps=3)).frames


@pytest.mark.parametrize("family", sorted(CASES))
def test_vae_slicing_and_tiling_give_the_same_video(family):
    torch.set_num_threads(1)
    cls, components, _, _ = CASES[family]
    plain = video(tiny_pipeline(cls, components()), family)
    pipe = tiny_pipeline(cls, components())
    sliced = video(pipe, family, vae_slicing=True, vae_tiling=True)
    assert pipe.vae.use_slicing and pipe.vae.use_tiling  # the switches are on ...
    assert plain.shape == sliced.shape and plain.shape[0] == 2
    # ... the same video: a batch of 1 instead of 2 through the VAE's convs only reorders fp32 sums (measured ≤ 1.4e-6
    # on pixels in [0, 1]); the denoising is untouched
    torch.testing.assert_close(torch.as_tensor(sliced), torch.as_tensor(plain), rtol=0, atol=1e-5)


def test_cpu_offload_is_refused_on_the_cpu():
    pipe = tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components())
    for mode in ("model", "sequential"):
        with pytest.raises(InputError, match=f"--cpu-offload {mode}.*no GPU"):
            configure_memory(pipe, cpu_offload=mode, device="cpu")
    with pytest.raises(InputError, match="cpu_offload"):
        configure_memory(pipe, cpu_offload="all")
    assert configure_memory(pipe) is pipe  # nothing asked: nothing changed
    assert not pipe.vae.use_slicing and not pipe.vae.use_tiling


def test_sample_flags_reach_the_pipeline(tmp_path, monkeypatch, capsys):
    root = write_tiny_sampling_inputs(tmp_path)
    seen = []
    real = settings.configure_memory

    def spy(pipe, **kwargs):
        seen.append(kwargs)
        return real(pipe, **kwargs)

    monkeypatch.setattr(settings, "configure_memory", spy)
    base = ["sample", "--model", str(root / "model"), "--prompt-embeds", str(root / "p.safetensors"), "--steps", "2",
            *SIZE_ARGS, "--device", "cpu"]
    assert main(base + ["--vae-slicing", "--vae-tiling", "--out", str(tmp_path / "a")]) == 0
    assert seen[-1]["vae_slicing"] and seen[-1]["vae_tiling"] and seen[-1]["cpu_offload"] == "none"
    assert main(base + ["--cpu-offload", "model", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "--cpu-offload model" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()  # refused before anything was written


def test_eval_passes_the_flags_to_lamo_sample(tmp_path):
    from lamo.evaluation import run_benchmark

    prompts = tmp_path / "p.txt"
    prompts.write_text("a ball rolls\n")
    argvs = []

    def generate(argv):
        argvs.append(argv)
        raise SystemExit(0)  # enough: the argv is what is checked

    with pytest.raises(SystemExit):
        run_benchmark("videophy", prompts, model="m/m", out=tmp_path / "o", generate=generate, cpu_offload="model",
                      vae_slicing=True, vae_tiling=True)
    argv = argvs[0]
    assert argv[argv.index("--cpu-offload") + 1] == "model" and "--vae-slicing" in argv and "--vae-tiling" in argv
    from lamo.cli import build_parser

    args = build_parser().parse_args(["eval", "vbench", "p.json", "--model", "m", "--out", "o", "--cpu-offload",
                                      "sequential", "--vae-tiling"])
    assert (args.cpu_offload, args.vae_slicing, args.vae_tiling) == ("sequential", False, True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="model CPU offload needs a GPU")
@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_cpu_offload_gives_the_same_video_on_a_gpu(mode):
    family = "cogvideox"
    cls, components, _, _ = CASES[family]
    plain = video(tiny_pipeline(cls, components()).to("cuda"), family)
    offloaded = video(tiny_pipeline(cls, components()), family, cpu_offload=mode, device="cuda")
    torch.testing.assert_close(torch.as_tensor(offloaded), torch.as_tensor(plain), rtol=0, atol=1e-5)
