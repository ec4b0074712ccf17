"""``lamo sample`` end to end on tiny models saved locally (no text encoder: prompt embeddings file)."""
from __future__ import annotations

import json

import pytest
from diffusers import CogVideoXPipeline, WanPipeline
from tiny_models import (COGVIDEOX_LATENT_CHANNELS, HEIGHT, NUM_FRAMES, TEXT_DIM, TEXT_LEN, WAN_LATENT_CHANNELS, WIDTH,
                         random_prompt_embeds, tiny_cogvideox_components, tiny_motion_prior, tiny_wan_components)

from lamo.cli import main
from lamo.commands.sample import load_prompt_embeds, read_prompts_file, save_prompt_embeds
from lamo.video_io import read_video

SIZE_ARGS = ["--frames", str(NUM_FRAMES), "--height", str(HEIGHT), "--width", str(WIDTH),
             "--max-sequence-length", str(TEXT_LEN)]


@pytest.fixture(scope="module")
def cogvideox_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("cogvideox")
    CogVideoXPipeline(**tiny_cogvideox_components()).save_pretrained(root / "model")
    tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox").save_pretrained(root / "prior")
    save_prompt_embeds(root / "prompts.safetensors", random_prompt_embeds(2, seed=1), random_prompt_embeds(1, seed=2),
                       prompts=["a red ball bounces", "two balls collide"])
    return root


def test_sample_sweeps_seeds_and_lambdas(cogvideox_model, tmp_path):
    out = tmp_path / "out"
    rc = main(["sample", "--model", str(cogvideox_model / "model"), "--prior", str(cogvideox_model / "prior"),
               "--prompt-embeds", str(cogvideox_model / "prompts.safetensors"), "--seeds", "0", "1",
               "--motion-guidance-scale", "0", "--motion-guidance-scale", "0.5", "--steps", "3",
               "--motion-guidance-window", "0.7", *SIZE_ARGS, "--out", str(out)])
    assert rc == 0
    expected = {f"{i}_{seed}_{lam}.mp4" for i in (0, 1) for seed in (0, 1) for lam in ("0", "0.5")}
    assert {p.name for p in out.glob("*.mp4")} == expected
    frames = read_video(out / "1_1_0.5.mp4")
    assert frames.shape[1:] == (HEIGHT, WIDTH, 3) and frames.shape[0] >= NUM_FRAMES

    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "done" and run["family"] == "cogvideox" and run["pipeline"] == "LaMoCogVideoXPipeline"
    assert run["versions"]["diffusers"] and run["versions"]["lamo"]
    assert run["prior"]["config"]["latent_channels"] == COGVIDEOX_LATENT_CHANNELS
    assert run["args"]["steps"] == 3 and run["lambdas"] == [0.0, 0.5] and run["prompts"][1] == "two balls collide"
    assert {v["file"] for v in run["videos"]} == expected
    assert run["timings"]["total_seconds"] > 0 and run["prior_dtype"] == "float32"  # a float32 model's default
    for video in run["videos"]:
        assert len(video["guide_loss"]) == 3  # L_guide measured at every step, λ = 0 included
        assert video["guided_steps"] == ([1, 2] if video["motion_guidance_scale"] > 0 else [])
        assert video["seconds"] > 0


def test_sample_wan_auto_detected_without_prior(tmp_path):
    WanPipeline(**tiny_wan_components(scheduler="euler")).save_pretrained(tmp_path / "model")
    save_prompt_embeds(tmp_path / "p.safetensors", random_prompt_embeds(1, true_lengths=[4]))
    rc = main(["sample", "--model", str(tmp_path / "model"), "--prompt-embeds", str(tmp_path / "p.safetensors"),
               "--guidance-scale", "1", "--steps", "2", *SIZE_ARGS, "--out", str(tmp_path / "out")])
    assert rc == 0
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["family"] == "wan" and run["prior"] is None and run["fps"] == 16
    assert [v["file"] for v in run["videos"]] == ["0_0_0.mp4"] and run["videos"][0]["guide_loss"] == []
    assert read_video(tmp_path / "out" / "0_0_0.mp4").shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)


def test_sample_errors_are_clear(cogvideox_model, tmp_path, capsys):
    model, prior = str(cogvideox_model / "model"), str(cogvideox_model / "prior")
    base = ["sample", "--model", model, "--steps", "2", *SIZE_ARGS, "--out", str(tmp_path / "o")]
    assert main(base + ["--prompt", "a ball"]) == 2
    assert "--prompt-embeds" in capsys.readouterr().err  # saved without a text encoder
    assert main(base + ["--prompt-embeds", str(cogvideox_model / "prompts.safetensors"),
                        "--motion-guidance-scale", "1"]) == 2
    assert "--prior" in capsys.readouterr().err
    wan_prior = tmp_path / "wan_prior"
    tiny_motion_prior(WAN_LATENT_CHANNELS, backbone="wan").save_pretrained(wan_prior)
    embeds = str(cogvideox_model / "prompts.safetensors")
    assert main(base + ["--prompt-embeds", embeds, "--prior", str(wan_prior)]) == 2
    assert "backbone family" in capsys.readouterr().err
    save_prompt_embeds(tmp_path / "no_neg.safetensors", random_prompt_embeds(1))
    assert main(base + ["--prompt-embeds", str(tmp_path / "no_neg.safetensors"), "--prior", prior]) == 2
    assert "negative_prompt_embeds" in capsys.readouterr().err
    assert main(["sample", "--model", str(tmp_path / "nowhere"), "--prompt", "x"]) == 2
    for bad in ("0", "-1", "nan"):
        assert main(base + ["--prompt-embeds", embeds, "--prior", prior, "--activation-gib", bad]) == 2
        assert "--activation-gib must be a finite number in (0, " in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_prompt_files(tmp_path):
    (tmp_path / "p.txt").write_text("a ball falls\n\ntwo balls collide\n")
    (tmp_path / "p.jsonl").write_text('{"prompt": "a ball falls"}\n{"prompt": "two balls collide", "seed": 3}\n')
    assert read_prompts_file(tmp_path / "p.txt") == read_prompts_file(tmp_path / "p.jsonl") == [
        "a ball falls", "two balls collide"]
    (tmp_path / "bad.jsonl").write_text('{"seed": 3}\n')  # no prompt column ('text' is one, as in every table)
    with pytest.raises(ValueError, match="prompt"):
        read_prompts_file(tmp_path / "bad.jsonl")
    save_prompt_embeds(tmp_path / "e.safetensors", random_prompt_embeds(2), prompts=["a", "b"])
    embeds, negative, prompts = load_prompt_embeds(tmp_path / "e.safetensors")
    assert embeds.shape == (2, TEXT_LEN, TEXT_DIM) and negative is None and prompts == ["a", "b"]


def test_sample_with_a_bf16_prior_and_split_pairs(cogvideox_model, tmp_path):
    out = tmp_path / "out"
    rc = main(["sample", "--model", str(cogvideox_model / "model"), "--prior", str(cogvideox_model / "prior"),
               "--prompt-embeds", str(cogvideox_model / "prompts.safetensors"), "--motion-guidance-scale", "0.5",
               "--steps", "3", "--motion-guidance-window", "0.7", "--prior-dtype", "bfloat16",
               "--activation-gib", "1e-9",
               *SIZE_ARGS, "--out", str(out)])
    assert rc == 0
    run = json.loads((out / "run.json").read_text())
    assert run["prior_dtype"] == "bfloat16" and run["args"]["activation_gib"] == 1e-9
    assert all(len(v["guide_loss"]) == 3 and v["guided_steps"] == [1, 2] for v in run["videos"])


def test_sample_into_an_earlier_run_is_refused_resumed_or_replaced(cogvideox_model, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["sample", "--model", str(cogvideox_model / "model"), "--prompt-embeds",
            str(cogvideox_model / "prompts.safetensors"), "--steps", "2", *SIZE_ARGS, "--out", str(out)]
    assert main(base + ["--seeds", "0", "1"]) == 0
    assert {p.name for p in out.glob("*.mp4")} == {"0_0_0.mp4", "0_1_0.mp4", "1_0_0.mp4", "1_1_0.mp4"}
    assert main(base) == 2 and "--skip-existing" in capsys.readouterr().err
    assert main(base + ["--skip-existing", "--overwrite"]) == 2
    assert main(base + ["--overwrite"]) == 0  # seed 0 only: the seed-1 videos of the old run go with it
    assert {p.name for p in out.glob("*.mp4")} == {"0_0_0.mp4", "1_0_0.mp4"}
    run = json.loads((out / "run.json").read_text())
    assert [v["file"] for v in run["videos"]] == ["0_0_0.mp4", "1_0_0.mp4"]
    (out / "run.json").unlink()  # videos whose origin nobody recorded
    assert main(base) == 2 and "no run.json" in capsys.readouterr().err
    assert main(base + ["--skip-existing"]) == 0  # nothing can be reused: both are made again
    assert "reusing" not in capsys.readouterr().out
    assert len(json.loads((out / "run.json").read_text())["videos"]) == 2
    other = tmp_path / "embeds.safetensors"  # same texts, other embeddings: another prompt
    save_prompt_embeds(other, random_prompt_embeds(2, seed=7), random_prompt_embeds(1, seed=2),
                       prompts=["a red ball bounces", "two balls collide"])
    argv = base + ["--skip-existing"]
    argv[argv.index("--prompt-embeds") + 1] = str(other)
    assert main(argv) == 0
    assert "making 2 video(s)" in capsys.readouterr().out and "prompt_embeds_sha256" in json.dumps(
        json.loads((out / "run.json").read_text())["videos"][0]["recipe"])


def test_sample_image_to_video(tmp_path):
    """`lamo sample --image`: an image-to-video model samples from the image; a text-to-video model and a
    missing or unreadable image are refused with the flag named."""
    from diffusers import CogVideoXImageToVideoPipeline
    from tiny_models import tiny_cogvideox_i2v_components, tiny_image

    CogVideoXImageToVideoPipeline(**tiny_cogvideox_i2v_components()).save_pretrained(tmp_path / "i2v")
    tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox").save_pretrained(tmp_path / "prior")
    CogVideoXPipeline(**tiny_cogvideox_components()).save_pretrained(tmp_path / "t2v")
    save_prompt_embeds(tmp_path / "p.safetensors", random_prompt_embeds(1, seed=1), random_prompt_embeds(1, seed=2))
    tiny_image().save(tmp_path / "first.png")
    args = ["--prompt-embeds", str(tmp_path / "p.safetensors"), "--steps", "2", *SIZE_ARGS]
    rc = main(["sample", "--model", str(tmp_path / "i2v"), "--prior", str(tmp_path / "prior"), "--image",
               str(tmp_path / "first.png"), "--motion-guidance-scale", "0.5", *args, "--out", str(tmp_path / "out")])
    assert rc == 0
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["pipeline"] == "LaMoCogVideoXImageToVideoPipeline" and run["videos"][0]["guided_steps"]
    assert run["videos"][0]["recipe"]["image_sha256"]
    assert main(["sample", "--model", str(tmp_path / "i2v"), *args, "--out", str(tmp_path / "o2")]) == 2  # no --image
    assert main(["sample", "--model", str(tmp_path / "t2v"), "--image", str(tmp_path / "first.png"), *args,
                 "--out", str(tmp_path / "o3")]) == 2  # a text-to-video model
    assert main(["sample", "--model", str(tmp_path / "i2v"), "--image", str(tmp_path / "nope.png"), *args,
                 "--out", str(tmp_path / "o4")]) == 2
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
