"""The effect benchmark writes the knobs it chose into the chosen prior's folder (sampling.json), and the demo
reads them back from there (falling back to selection.json)."""
import pytest

from lamo.demo.config import DemoConfig
from lamo.demo import selection as S

pytestmark = pytest.mark.skipif(S.write_sampling_settings is None, reason="needs write_sampling_settings")

SEL = {"lambda": 3.0, "window": 0.5, "lambda_why": "lowest validation composite physics error (-43.2 %)",
       "val_prompts": 32, "val_seeds": [100, 101], "source": "selection.json", "flowmo_eta": 0.001}


def test_written_settings_are_read_back_and_win_over_the_selection(tmp_path):
    cfg = DemoConfig(steps=25, guidance_scale=2.0)
    path = S.record_sampling_settings(tmp_path, SEL, cfg)
    assert path == tmp_path / "sampling.json"
    sel = S.apply_sampling_settings({**SEL, "lambda": 1.0, "window": 0.8}, tmp_path, cfg)
    assert (sel["lambda"], sel["window"]) == (3.0, 0.5) and "sampling.json" in sel["source"]
    assert sel["sampling_settings"]["settings"] == {"motion_guidance_scale": 3.0, "motion_guidance_window": 0.5,
                                                    "num_inference_steps": 25, "guidance_scale": 2.0}
    assert "32 validation prompts × 2 seeds" in sel["sampling_settings"]["source"]


def test_no_sampling_json_keeps_the_selection_and_other_sampler_settings_are_refused(tmp_path):
    cfg = DemoConfig(steps=25, guidance_scale=2.0)
    assert S.apply_sampling_settings(SEL, tmp_path, cfg) == SEL
    S.record_sampling_settings(tmp_path, SEL, cfg)
    with pytest.raises(ValueError, match="other sampler settings"):
        S.apply_sampling_settings(SEL, tmp_path, DemoConfig(steps=25, guidance_scale=4.0))
