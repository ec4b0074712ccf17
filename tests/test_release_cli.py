"""`lamo sample` with the release: --release-sampler, and a release folder as --prior (its transformer is loaded)."""
import json

import torch
from test_convert import release_like, write_release
from test_sampling_run import calls  # noqa: F401  (the spy on every LaMo pipeline call)
from tiny_models import (COGVIDEOX_LATENT_CHANNELS, SIZE_ARGS, TEXT_DIM, random_prompt_embeds,
                         tiny_cogvideox_components, tiny_wan_components)

from lamo.cli import main
from lamo.sampling import save_prompt_embeds
from lamo.video_io import read_video


def inputs(root):
    from diffusers import CogVideoXPipeline

    CogVideoXPipeline(**tiny_cogvideox_components()).save_pretrained(root / "model")
    save_prompt_embeds(root / "p.safetensors", random_prompt_embeds(1, seed=1), random_prompt_embeds(1, seed=2),
                       prompts=["a red ball bounces"])
    return ["--prompt-embeds", str(root / "p.safetensors"), "--steps", "3", *SIZE_ARGS, "--device", "cpu"]


def test_release_sampler_flag(tmp_path, calls, capsys):  # noqa: F811
    common = inputs(tmp_path)
    assert main(["sample", "--model", str(tmp_path / "model"), *common, "--release-sampler",
                 "--out", str(tmp_path / "o")]) == 0
    assert calls[-1]["use_dynamic_cfg"] is True
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    recipe = run["videos"][0]["recipe"]
    assert recipe["scheduler"] == "FirstOrderCogVideoXDPMScheduler" and recipe["release_sampler"] is True
    assert main(["sample", "--model", str(tmp_path / "model"), *common, "--out", str(tmp_path / "plain")]) == 0
    assert "use_dynamic_cfg" not in calls[-1]  # off by default: the model's own scheduler and CFG
    from diffusers import WanPipeline

    WanPipeline(**tiny_wan_components()).save_pretrained(tmp_path / "wan")
    assert main(["sample", "--model", str(tmp_path / "wan"), *common, "--release-sampler",
                 "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "--release-sampler" in err and "never samples with Wan" in err and "Traceback" not in err


def test_a_release_folder_as_prior_brings_its_transformer(tmp_path, capsys):
    common = inputs(tmp_path)
    release = write_release(release_like(channels=COGVIDEOX_LATENT_CHANNELS, text_dim=TEXT_DIM), tmp_path / "release")
    tuned = tiny_cogvideox_components(seed=5)
    tuned["transformer"].save_pretrained(release / "transformer")
    lam = ["--motion-guidance-scale", "0.5"]
    assert main(["sample", "--model", str(tmp_path / "model"), *common, *lam, "--prior", str(release),
                 "--out", str(tmp_path / "a")]) == 0
    assert "fine-tuned transformer" in capsys.readouterr().out
    # the same as a model folder holding that transformer, guided by the predictor alone
    from diffusers import CogVideoXPipeline

    CogVideoXPipeline(**{**tiny_cogvideox_components(), "transformer": tuned["transformer"]}).save_pretrained(
        tmp_path / "tuned-model")
    only = write_release(release_like(channels=COGVIDEOX_LATENT_CHANNELS, text_dim=TEXT_DIM), tmp_path / "only")
    assert main(["sample", "--model", str(tmp_path / "tuned-model"), *common, *lam, "--prior", str(only),
                 "--out", str(tmp_path / "b")]) == 0
    assert main(["sample", "--model", str(tmp_path / "model"), *common, *lam, "--prior", str(only),
                 "--out", str(tmp_path / "c")]) == 0
    a, b, c = (torch.as_tensor(read_video(next((tmp_path / d).glob("*.mp4")))) for d in "abc")
    assert torch.equal(a, b) and not torch.equal(a, c)
