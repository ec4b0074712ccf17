"""HunyuanVideo and LTX-Video through the commands, on tiny random models saved with their text encoders:
`lamo cache` → `lamo train prior` → `lamo sample` (guided, prompts as text) → `lamo eval motion`; and
`lamo train finetune` → `lamo share lora --format comfyui` (LTX-Video; HunyuanVideo is refused)."""
from __future__ import annotations

import json

import pytest
import torch
from tiny_models import (tiny_hunyuan_video_components, tiny_hunyuan_video_text_encoders, tiny_ltx_components,
                         tiny_text_encoder)

from lamo.cli import main
from lamo.physics.dataset import write_dataset
from lamo.physics.world import get_world_config

FRAMES, SIZE = 9, 32  # 9 frames → 3 latent frames through both tiny VAEs (4× in time)
WORDS = ("is", "dropped")


def _ltx(root):
    from diffusers import LTXPipeline

    text_encoder, tokenizer = tiny_text_encoder(words=WORDS)
    LTXPipeline(**dict(tiny_ltx_components(), text_encoder=text_encoder, tokenizer=tokenizer)).save_pretrained(root)


def _hunyuan_video(root):
    from diffusers import HunyuanVideoPipeline

    HunyuanVideoPipeline(**dict(tiny_hunyuan_video_components(), **tiny_hunyuan_video_text_encoders(WORDS))
                         ).save_pretrained(root)


MODELS = {"ltx": (_ltx, 8, "LaMoLTXPipeline"), "hunyuanvideo": (_hunyuan_video, 4, "LaMoHunyuanVideoPipeline")}


def _cached_prompt_embeds(cache):
    """The first cached clip's prompt embeddings, ``(1, L, D)``."""
    from safetensors.torch import load_file

    return load_file(cache / "shard-00000.safetensors")["prompt_embeds"][:1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, 4, get_world_config("tiny", size=SIZE, frames=FRAMES, radius=(3.0, 4.0)), progress=False)
    return root


@pytest.mark.parametrize("family", list(MODELS))
def test_cache_train_sample_eval_finetune(family, data, tmp_path, capsys):
    torch.set_num_threads(1)
    build, channels, pipeline = MODELS[family]
    model = tmp_path / "model"
    build(model)
    size = ["--frames", str(FRAMES), "--height", str(SIZE), "--width", str(SIZE)]
    assert main(["cache", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "cache"),
                 "--shard-size", "4", "--prompt-embeds", *size]) == 0
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["family"] == family and manifest["complete"]
    latent_size = SIZE // (4 if family == "ltx" else 8)  # the tiny LTX VAE compresses 4× in space, HunyuanVideo's 8×
    assert manifest["latent_shape"] == [3, channels, latent_size, latent_size]
    assert main(["train", "prior", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "prior"),
                 "--preset", "tiny", "--steps", "2", "--batch-size", "2", "--log-with", "none"]) == 0
    prior_config = json.loads((tmp_path / "prior" / "prior" / "config.json").read_text())
    assert prior_config["backbone"] == family and prior_config["latent_channels"] == channels
    out = tmp_path / "videos"
    assert main(["sample", "--model", str(model), "--prior", str(tmp_path / "prior" / "prior"), "--prompt",
                 "a red ball is dropped", "--steps", "3", "--motion-guidance-scale", "0", "--motion-guidance-scale",
                 "1", "--motion-guidance-window", "0.7", *size, "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["family"] == family and run["pipeline"] == pipeline and run["fps"] == 24
    guided = {v["motion_guidance_scale"]: v for v in run["videos"]}
    assert guided[1.0]["guided_steps"] == [1, 2] and guided[0.0]["guided_steps"] == []
    assert len(guided[1.0]["guide_loss"]) == 3
    # prompt embeddings from a file: LTX-Video attends to every token; HunyuanVideo needs its CLIP pooled prompt
    from lamo.sampling import save_prompt_embeds

    save_prompt_embeds(tmp_path / "p.safetensors", _cached_prompt_embeds(tmp_path / "cache"))
    rc = main(["sample", "--model", str(model), "--prompt-embeds", str(tmp_path / "p.safetensors"), "--steps", "2",
               "--guidance-scale", "1", *size, "--out", str(tmp_path / "from-embeds")])
    if family == "hunyuanvideo":
        assert rc == 2 and "pooled_prompt_embeds" in capsys.readouterr().err
    else:
        assert rc == 0 and (tmp_path / "from-embeds" / "0_0_0.mp4").is_file()
    assert main(["eval", "motion", str(out)]) == 0
    assert len(json.loads((out / "eval_motion.json").read_text())["clips"]) == 2

    # fine-tuning: LTX-Video trains a LoRA that `lamo share lora` writes for ComfyUI (the family read from the run)
    finetune = ["train", "finetune", "--model", str(model), "--cache", str(tmp_path / "cache"), "--out",
                str(tmp_path / "ft"), "--steps", "2", "--batch-size", "2", "--lora-rank", "2", "--log-with", "none"]
    if family == "hunyuanvideo":  # its transformer needs the CLIP pooled prompt, which a cache does not hold
        assert main(finetune) == 2
        assert "pooled_prompt_embeds" in capsys.readouterr().err
        return
    assert main(finetune) == 0
    assert main(["share", "lora", str(tmp_path / "ft"), "--out", str(tmp_path / "comfy.safetensors")]) == 0
    from lamo.lora_export import load_comfyui, read_lora

    assert set(load_comfyui(tmp_path / "comfy.safetensors").modules()) == set(read_lora(tmp_path / "ft").modules())
