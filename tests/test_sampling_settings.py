"""A prior carries the settings it was validated at (``sampling.json``): written, read back, refused when garbled."""
from __future__ import annotations

import json

import pytest
from tiny_models import COGVIDEOX_LATENT_CHANNELS, tiny_motion_prior

import lamo
from lamo.errors import InputError
from lamo.prior import SAMPLING_KEYS, MotionPrior, read_sampling_settings, write_sampling_settings

SETTINGS = dict(motion_guidance_scale=3.0, motion_guidance_window=0.5, num_inference_steps=25, guidance_scale=2.0)


def test_settings_round_trip_and_reach_the_loaded_prior(tmp_path):
    tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox").save_pretrained(tmp_path)
    assert read_sampling_settings(tmp_path) is None
    assert MotionPrior.from_pretrained(tmp_path).sampling_settings is None
    path = write_sampling_settings(tmp_path, SETTINGS, source="a sweep on 64 validation clips")
    assert path == tmp_path / lamo.SAMPLING_SETTINGS_FILE
    record = read_sampling_settings(tmp_path)
    assert record["settings"] == SETTINGS and record["source"] == "a sweep on 64 validation clips"
    assert record["written"][:4].isdigit() and isinstance(record["settings"]["num_inference_steps"], int)
    assert MotionPrior.from_pretrained(tmp_path).sampling_settings == SETTINGS
    write_sampling_settings(tmp_path, {"motion_guidance_scale": 2}, source="λ only")  # a subset is fine
    assert MotionPrior.from_pretrained(tmp_path).sampling_settings == {"motion_guidance_scale": 2.0}


@pytest.mark.parametrize("settings, message", [
    ({"cfg": 2.0}, "unknown sampling setting"),
    ({}, "non-empty"),
    ({"motion_guidance_window": 1.5}, "motion_guidance_window must be a number in [0, 1]"),
    ({"motion_guidance_scale": -1}, "motion_guidance_scale must be a finite number ≥ 0"),
    ({"num_inference_steps": 2.5}, "num_inference_steps must be a whole number ≥ 1"),
    ({"guidance_scale": float("nan")}, "guidance_scale must be"),
])
def test_bad_settings_are_refused(tmp_path, settings, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        write_sampling_settings(tmp_path, settings, source="x")
    assert not (tmp_path / "sampling.json").exists()


def test_a_garbled_file_is_named(tmp_path):
    tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox").save_pretrained(tmp_path)
    (tmp_path / "sampling.json").write_text("{not json")
    with pytest.raises(InputError, match="sampling.json is not valid JSON"):
        MotionPrior.from_pretrained(tmp_path)
    (tmp_path / "sampling.json").write_text(json.dumps({"settings": {"guidance_scale": "high"}}))
    with pytest.raises(InputError, match=str(tmp_path / "sampling.json")):
        read_sampling_settings(tmp_path)
    with pytest.raises(InputError, match="source"):
        write_sampling_settings(tmp_path, {"guidance_scale": 2.0}, source=" ")


def test_the_shipped_prior_carries_the_demo_choice():
    """The demo prior's sampling.json holds what the demo's validation run chose (selection.json) and its
    sampler setting, with a sentence saying so."""
    from lamo.demo.run import ASSETS, DemoConfig

    folder = ASSETS / "demo-prior"
    selection = json.loads((folder / "selection.json").read_text())
    record = read_sampling_settings(folder)
    assert set(record["settings"]) == set(SAMPLING_KEYS)
    assert record["settings"]["motion_guidance_scale"] == selection["lambda"]
    assert record["settings"]["motion_guidance_window"] == selection["window"]
    assert record["settings"]["num_inference_steps"] == selection["steps"] == DemoConfig().steps
    cfg = DemoConfig()  # the demo's CFG scale, under either spelling (the vocabulary renames cfg_scale)
    cfg_scale = getattr(cfg, "guidance_scale", getattr(cfg, "cfg_scale", None))
    assert record["settings"]["guidance_scale"] == selection.get("guidance_scale", selection.get("cfg_scale")) == cfg_scale
    assert "validation" in record["source"]
