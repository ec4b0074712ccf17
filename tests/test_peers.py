"""The FlowMo-style peer: training-free variance guidance through the backbone."""
import pytest
import torch
from diffusers import CogVideoXPipeline

from lamo.peers import FlowMoGuidance, flowmo_variance_loss
from tiny_models import cogvideox_call_kwargs, random_prompt_embeds, tiny_cogvideox_components, tiny_pipeline


def _call(pipe, steps_out=None, **kw):
    def cb(p, i, t, tensors):
        if steps_out is not None:
            steps_out.append(tensors["latents"].clone())
        return {}
    emb, neg = random_prompt_embeds(2, seed=1), random_prompt_embeds(2, seed=2)
    return pipe(prompt_embeds=emb, negative_prompt_embeds=neg, generator=torch.Generator().manual_seed(0),
                callback_on_step_end=cb, **cogvideox_call_kwargs(num_inference_steps=4, **kw)).frames


def test_variance_loss_hand_value_and_top_fraction():
    x0 = torch.zeros(1, 2, 1, 1, 4)
    x0[0, 1, 0, 0] = torch.tensor([2.0, 0.0, 4.0, 0.0])  # temporal variance per location: 1, 0, 4, 0
    assert torch.allclose(flowmo_variance_loss(x0, top_fraction=0.25), torch.tensor([4.0]))
    assert torch.allclose(flowmo_variance_loss(x0, top_fraction=1.0), torch.tensor([1.25]))


def test_flowmo_off_is_bit_identical_and_on_changes_only_guided_steps():
    pipe = tiny_pipeline(CogVideoXPipeline, tiny_cogvideox_components())
    ref_steps = []
    ref = _call(pipe, ref_steps)
    with FlowMoGuidance(pipe, scale=0.0):
        assert torch.equal(_call(pipe), ref)
    g_steps = []
    with FlowMoGuidance(pipe, scale=5.0, steps=2) as fm:
        out = _call(pipe, g_steps)
    assert len(fm.history) == 2 and not torch.equal(out, ref)
    with FlowMoGuidance(pipe, scale=1e-30, steps=4):  # x_t unchanged: the recomputed CFG mix is the pipeline's
        assert torch.allclose(_call(pipe), ref, atol=1e-6)
    assert not torch.equal(g_steps[0], ref_steps[0])  # the first step is guided
    assert "forward" not in vars(pipe.transformer) and "step" not in vars(pipe.scheduler)  # wrappers removed


def test_flowmo_lowers_the_variance_it_targets_and_backpropagates_through_the_backbone():
    pipe = tiny_pipeline(CogVideoXPipeline, tiny_cogvideox_components())
    fm = FlowMoGuidance(pipe, scale=0.5, steps=1)
    seen, forward = [], pipe.transformer.forward

    def spy(**kw):  # FlowMo re-runs whatever `forward` it finds: see whether its input carries grad
        seen.append(torch.is_grad_enabled() and kw["hidden_states"].requires_grad)
        return forward(**kw)

    pipe.transformer.forward = spy
    with fm:
        _call(pipe)
    del pipe.transformer.forward
    assert seen.count(True) == 1  # one backward through the backbone: what makes FlowMo expensive
    # the guided step moved x_t against the gradient of L: L re-measured at the new x_t is lower
    assert len(fm.history_after) == 1 and fm.history_after[0] < fm.history[0]
    with pytest.raises(ValueError, match="scale"):
        FlowMoGuidance(pipe, scale=-1)


def test_flowmo_on_wan_mixes_both_cfg_calls_and_lowers_its_loss():
    from diffusers import WanPipeline

    from tiny_models import tiny_wan_components, wan_call_kwargs

    pipe = tiny_pipeline(WanPipeline, tiny_wan_components(scheduler="euler"))
    emb = random_prompt_embeds(1, seed=1, true_lengths=[5])
    neg = random_prompt_embeds(1, seed=2, true_lengths=[7])

    def call():
        return pipe(prompt_embeds=emb, negative_prompt_embeds=neg, generator=torch.Generator().manual_seed(0),
                    **wan_call_kwargs(num_inference_steps=3)).frames

    ref = call()
    seen, forward = [], pipe.transformer.forward

    def spy(**kw):
        seen.append((torch.is_grad_enabled() and kw["hidden_states"].requires_grad,
                     kw["encoder_hidden_states"] is emb))
        return forward(**kw)

    pipe.transformer.forward = spy
    with FlowMoGuidance(pipe, scale=0.5, steps=1) as fm:
        out = call()
    del pipe.transformer.forward
    # 3 steps × 2 CFG calls, plus the guided step's re-runs: 2 with grad (cond, uncond) and 2 after the update
    assert len(seen) == 10 and [g for g, _ in seen].count(True) == 2
    assert [c for g, c in seen if g] == [True, False]  # conditional first, as WanPipeline calls them
    assert len(fm.history) == 1 and fm.history_after[0] < fm.history[0]
    assert not torch.equal(out, ref)
    with FlowMoGuidance(pipe, scale=0.0):
        assert torch.equal(call(), ref)
    with FlowMoGuidance(pipe, scale=1e-30, steps=3):  # x_t unchanged: the recomputed CFG mix is the pipeline's
        assert torch.allclose(call(), ref, atol=1e-6)
