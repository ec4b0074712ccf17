"""``lamo settings``: show and record the sampling settings a prior was validated at; `lamo sample` then uses them."""
from __future__ import annotations

import json

from tiny_models import COGVIDEOX_LATENT_CHANNELS, tiny_motion_prior

import lamo.assets
from lamo.cli import main
from lamo.prior import MotionPrior


def test_settings_shows_the_shipped_record(capsys):
    assert main(["settings", str(lamo.assets.demo_prior())]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["settings"] == {"motion_guidance_scale": 3.0, "motion_guidance_window": 0.5,
                                  "num_inference_steps": 25, "guidance_scale": 2.0}


def test_settings_records_a_users_choice_which_the_prior_then_carries(tmp_path, capsys):
    folder = tmp_path / "prior"
    tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox").save_pretrained(folder)
    assert main(["settings", str(folder)]) == 0
    assert "records no sampling settings" in capsys.readouterr().out  # says so, with the command that records them
    assert MotionPrior.from_pretrained(folder).sampling_settings is None

    assert main(["settings", str(folder), "--motion-guidance-scale", "0.3", "--steps", "40",
                 "--source", "lowest validation error among λ 0, 0.3, 1 on 64 prompts"]) == 0
    assert MotionPrior.from_pretrained(folder).sampling_settings == {"motion_guidance_scale": 0.3,
                                                                     "num_inference_steps": 40}
    record = json.loads((folder / "sampling.json").read_text())
    assert record["source"] == "lowest validation error among λ 0, 0.3, 1 on 64 prompts"


def test_settings_refuses_what_it_cannot_record(tmp_path, capsys):
    folder = tmp_path / "prior"
    tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox").save_pretrained(folder)
    assert main(["settings", str(folder), "--motion-guidance-scale", "1"]) == 2  # no --source
    assert "--source" in capsys.readouterr().err
    assert main(["settings", str(folder), "--motion-guidance-window", "1.5", "--source", "x"]) == 2
    assert "--motion-guidance-window must be" in capsys.readouterr().err
    assert main(["settings", str(tmp_path), "--steps", "5", "--source", "x"]) == 2  # not a prior folder
    assert "not a motion prior folder" in capsys.readouterr().err
    assert not (folder / "sampling.json").exists() and not (tmp_path / "sampling.json").exists()
