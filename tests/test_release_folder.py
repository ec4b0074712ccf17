"""A release folder from a full fine-tune: ``transformer/`` (save_pretrained) + ``scheduler/`` + ``predictor.safetensors``.

The folder is written here in that layout; its transformer has other weights than the pipeline's, so loading it
(or not) shows in the pipeline's weights and in its output.
"""
import pytest
import torch
from test_convert import release_like, write_release
from tiny_models import (COGVIDEOX_LATENT_CHANNELS, TEXT_DIM, cogvideox_call_kwargs, random_prompt_embeds,
                         tiny_cogvideox_components, tiny_pipeline, tiny_wan_components)

from lamo.cli import main
from lamo.convert import convert_release_predictor, load_release
from lamo.errors import InputError
from lamo.pipelines import LaMoCogVideoXPipeline


def full_finetune_folder(root):
    """The release's full fine-tune output: a fine-tuned transformer (another seed), its scheduler, the predictor."""
    tuned = tiny_cogvideox_components(seed=5)
    src = write_release(release_like(channels=COGVIDEOX_LATENT_CHANNELS, text_dim=TEXT_DIM), root)
    tuned["transformer"].save_pretrained(root / "transformer")
    tuned["scheduler"].save_pretrained(root / "scheduler")
    return src, tuned["transformer"]


def test_load_release_loads_the_fine_tuned_transformer(tmp_path):
    src, tuned = full_finetune_folder(tmp_path / "release")
    pipe = tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components())
    before = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}
    prior = load_release(pipe, src)
    assert prior.config.arch == "release" and pipe.motion_prior is prior
    after = pipe.transformer.state_dict()
    assert all(torch.equal(after[k], v) for k, v in tuned.state_dict().items())
    assert any(not torch.equal(after[k], before[k]) for k in before)  # it was not left as it was
    # and the pipeline samples with it: same output as a pipeline built on the tuned transformer
    ref = tiny_pipeline(LaMoCogVideoXPipeline, {**tiny_cogvideox_components(), "transformer": tuned})
    emb, neg = random_prompt_embeds(1, seed=1), random_prompt_embeds(1, seed=2)
    call = dict(prompt_embeds=emb, negative_prompt_embeds=neg, motion_guidance_scale=0.0, **cogvideox_call_kwargs())
    a = pipe(generator=torch.Generator().manual_seed(0), **call).frames
    b = ref(generator=torch.Generator().manual_seed(0), **call).frames
    torch.testing.assert_close(a, b)


def test_convert_copies_the_transformer_and_the_converted_folder_loads_it(tmp_path):
    src, tuned = full_finetune_folder(tmp_path / "release")
    assert main(["convert", "release-predictor", str(src), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "transformer" / "config.json").is_file()
    pipe = tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components())
    load_release(pipe, tmp_path / "out")
    after = pipe.transformer.state_dict()
    assert all(torch.equal(after[k], v) for k, v in tuned.state_dict().items())


def test_load_motion_prior_refuses_a_folder_with_a_transformer(tmp_path):
    src, _ = full_finetune_folder(tmp_path / "release")
    pipe = tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components())
    with pytest.raises(InputError, match="load_release"):
        pipe.load_motion_prior(str(src))


def test_a_broken_or_foreign_transformer_is_refused(tmp_path):
    src = write_release(release_like(channels=COGVIDEOX_LATENT_CHANNELS, text_dim=TEXT_DIM), tmp_path / "a")
    (src / "transformer").mkdir()
    pipe = tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components())
    with pytest.raises(InputError, match="no config.json"):
        load_release(pipe, src)
    other = write_release(release_like(channels=COGVIDEOX_LATENT_CHANNELS, text_dim=TEXT_DIM), tmp_path / "b")
    tiny_wan_components()["transformer"].save_pretrained(other / "transformer")
    with pytest.raises(InputError, match="WanTransformer3DModel"):
        load_release(pipe, other)
    with pytest.raises(InputError, match="no config.json"):
        convert_release_predictor(src, tmp_path / "out")
