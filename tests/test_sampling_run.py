"""Sampling runs as a library object (:mod:`lamo.sampling`) and what ``lamo sample`` takes from the prior.

* without flags ``lamo sample --prior P`` samples at the settings P records, prints them with their sources, and
  run.json records every value used (CFG never null);
* every guidance option of the Python API is a flag of ``lamo sample`` and reaches the pipeline;
* :class:`lamo.sampling.SampleRun` makes what the command makes, byte for byte.
"""
from __future__ import annotations

import json

import pytest
from tiny_models import (COGVIDEOX_LATENT_CHANNELS, HEIGHT, NUM_FRAMES, SIZE_ARGS, TEXT_LEN, WIDTH,
                         tiny_motion_prior, write_tiny_sampling_inputs)

import lamo.assets
from lamo.cli import main
from lamo.pipelines import MotionGuidedPipelineMixin
from lamo.prior import write_sampling_settings
from lamo.sampling import SampleConfig, SampleRun

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = write_tiny_sampling_inputs(tmp_path_factory.mktemp("tiny"))
    tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox", seed=1, tau=2).save_pretrained(root / "prior2")
    return root


@pytest.fixture
def calls(monkeypatch):
    """The keyword arguments of every LaMo pipeline call."""
    seen: list[dict] = []
    real = MotionGuidedPipelineMixin.__call__

    def spy(self, *args, **kwargs):
        seen.append(kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MotionGuidedPipelineMixin, "__call__", spy)
    return seen


def test_sample_uses_the_prior_settings_and_records_them(tmp_path, capsys, calls):
    """The shipped prior records λ 3, ρ 0.5, 25 steps, CFG 2: `lamo sample` without flags samples with them."""
    out = tmp_path / "out"
    assert main(["sample", "--model", str(lamo.assets.demo_backbone()), "--prior", str(lamo.assets.demo_prior()),
                 "--prompt", "a red ball is thrown to the right", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "λ=3 (prior), ρ=0.5 (prior), steps=25 (prior), CFG=2 (prior)" in printed
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["motion_guidance_scale"] == [3.0] and run["lambdas"] == [3.0]
    assert (run["settings"]["motion_guidance_window"], run["settings"]["num_inference_steps"],
            run["settings"]["guidance_scale"]) == (0.5, 25, 2.0)
    assert set(run["settings_sources"].values()) == {"prior"}
    assert run["settings"]["motion_guidance_mode"] == "output" and run["settings"]["motion_guidance_more_priors"] == []
    recipe = run["videos"][0]["recipe"]
    assert (recipe["guidance_scale"], recipe["steps"], recipe["window"]) == (2.0, 25, 0.5)  # never null
    assert [v["file"] for v in run["videos"]] == ["0_0_3.mp4"] and len(run["videos"][0]["guide_loss"]) == 25
    assert (calls[0]["num_inference_steps"], calls[0]["guidance_scale"], calls[0]["motion_guidance_window"]) == (
        25, 2.0, 0.5)
    # the caller's flags win, and say so
    assert main(["sample", "--model", str(lamo.assets.demo_backbone()), "--prior", str(lamo.assets.demo_prior()),
                 "--prompt", "a ball", "--steps", "2", "--guidance-scale", "1", "--out", str(tmp_path / "o2")]) == 0
    assert "λ=3 (prior), ρ=0.5 (prior), steps=2 (caller), CFG=1 (caller)" in capsys.readouterr().out


def test_a_prior_without_settings_samples_at_defaults_and_says_so(tiny, tmp_path, capsys, caplog):
    out = tmp_path / "out"
    assert main(["sample", "--model", str(tiny / "model"), "--prior", str(tiny / "prior"), "--prompt-embeds",
                 str(tiny / "p.safetensors"), "--steps", "2", *SIZE_ARGS, "--out", str(out)]) == 0
    assert "λ=1 (default), ρ=0.8 (default), steps=2 (caller), CFG=6 (default)" in capsys.readouterr().out
    assert any("write_sampling_settings" in r.getMessage() for r in caplog.records)
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["guidance_scale"] == 6.0 and run["videos"][0]["recipe"]["guidance_scale"] == 6.0


def test_every_guidance_flag_reaches_the_pipeline(tiny, tmp_path, calls):
    out = tmp_path / "out"
    assert main(["sample", "--model", str(tiny / "model"), "--prior", str(tiny / "prior"), "--prompt-embeds",
                 str(tiny / "p.safetensors"), "--steps", "3", *SIZE_ARGS, "--out", str(out),
                 "--motion-guidance-scale", "0.5", "--motion-guidance-window", "0.6",
                 "--motion-guidance-mode", "latent", "--motion-guidance-reduction", "element_mean",
                 "--motion-guidance-window-rounding", "floor", "--motion-guidance-stop-gradient",
                 "--motion-guidance-schedule", "noise", "--motion-guidance-more-priors", str(tiny / "prior2")]) == 0
    (kwargs,) = calls
    assert {k: kwargs[k] for k in ("motion_guidance_scale", "motion_guidance_window", "motion_guidance_mode",
                                   "motion_guidance_reduction", "motion_guidance_window_rounding",
                                   "motion_guidance_stop_gradient", "motion_guidance_schedule")} == dict(
        motion_guidance_scale=0.5, motion_guidance_window=0.6, motion_guidance_mode="latent",
        motion_guidance_reduction="element_mean", motion_guidance_window_rounding="floor",
        motion_guidance_stop_gradient=True, motion_guidance_schedule="noise")
    (extra,) = kwargs["motion_guidance_more_priors"]
    assert extra.config.tau == 2  # the prior at the other lag
    run = json.loads((out / "run.json").read_text())
    assert run["videos"][0]["guided_steps"] == [1, 2]  # ⌊(1 − 0.6)·3⌋ = 1 (floor), not ⌈1.2⌉ = 2
    recipe = run["videos"][0]["recipe"]
    same_lag = ["sample", "--model", str(tiny / "model"), "--prior", str(tiny / "prior"), "--prompt-embeds",
                str(tiny / "p.safetensors"), "--steps", "3", *SIZE_ARGS, "--out", str(tmp_path / "o2"),
                "--motion-guidance-more-priors", str(tiny / "prior")]
    assert main(same_lag) == 2 and not (tmp_path / "o2").exists()  # refused before anything is written
    assert (recipe["mode"], recipe["reduction"], recipe["window_rounding"], recipe["stop_gradient"],
            recipe["schedule"]) == ("latent", "element_mean", "floor", True, "noise")
    assert recipe["more_priors"][0]["path"] == str(tiny / "prior2") and recipe["more_priors"][0]["sha256"]


def test_the_library_run_makes_the_commands_files(tiny, tmp_path):
    cli, lib = tmp_path / "cli", tmp_path / "lib"
    common = dict(model=str(tiny / "model"), prior=str(tiny / "prior"), prompt_embeds=str(tiny / "p.safetensors"),
                  steps=2, frames=NUM_FRAMES, height=HEIGHT, width=WIDTH, max_sequence_length=TEXT_LEN)
    assert main(["sample", "--model", common["model"], "--prior", common["prior"], "--prompt-embeds",
                 common["prompt_embeds"], "--steps", "2", *SIZE_ARGS, "--motion-guidance-scale", "0", "0.5",
                 "--out", str(cli)]) == 0
    record = SampleRun(SampleConfig(**common, motion_guidance_scale=[0.0, 0.5], out=str(lib))).run()
    assert [v["file"] for v in record["videos"]] == ["0_0_0.mp4", "0_0_0.5.mp4"]
    for name in ("0_0_0.mp4", "0_0_0.5.mp4"):
        assert (cli / name).read_bytes() == (lib / name).read_bytes()
    written = json.loads((lib / "run.json").read_text())
    assert written["videos"] == record["videos"] and written["settings"] == record["settings"]
    with pytest.raises(ValueError, match="--motion-guidance-window"):
        SampleRun(SampleConfig(**common, motion_guidance_window=2.0, out=str(tmp_path / "bad")))
    assert not (tmp_path / "bad").exists()


def test_recorded_settings_of_a_tiny_prior_drive_the_sweep(tiny, tmp_path):
    """A user's own record (write_sampling_settings) is what `lamo sample` uses next."""
    import shutil

    prior = tmp_path / "prior"
    shutil.copytree(tiny / "prior", prior)
    write_sampling_settings(prior, dict(motion_guidance_scale=0.25, motion_guidance_window=1.0, num_inference_steps=2,
                                        guidance_scale=3.0), source="a test sweep")
    out = tmp_path / "out"
    assert main(["sample", "--model", str(tiny / "model"), "--prior", str(prior), "--prompt-embeds",
                 str(tiny / "p.safetensors"), *SIZE_ARGS, "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert [v["file"] for v in run["videos"]] == ["0_0_0.25.mp4"]
    assert run["videos"][0]["guided_steps"] == [0, 1] and len(run["videos"][0]["guide_loss"]) == 2
