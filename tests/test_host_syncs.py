"""A guided step never makes the host wait for the device (issue #7: "no host syncs inside the step").

A host sync is an op that reads a tensor's value into Python (``item()``, ``float()``, ``bool()``,
indexing by a 0-d tensor — all ``aten._local_scalar_dense``) or a per-step copy of a scheduler table
to the sampling device. On the CPU nothing waits, but the ops are the same as on a GPU, so counting
them here shows what a GPU would do.
"""
from __future__ import annotations

import pytest
import torch
from test_pipelines import BACKBONES, _run
from torch.utils._python_dispatch import TorchDispatchMode

from lamo.adapters import CogVideoXAdapter, WanAdapter
from lamo.adapters.base import on_device
from lamo.pipelines import NonFiniteGuidanceError

READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default}


class CountOps(TorchDispatchMode):
    """Counts tensor → Python reads and copies to another device."""

    def __init__(self):
        super().__init__()
        self.reads = 0
        self.copies_to: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in READS:
            self.reads += 1
        elif func is torch.ops.aten._to_copy.default and "device" in kwargs and isinstance(args[0], torch.Tensor):
            if torch.device(kwargs["device"]) != args[0].device:
                self.copies_to.append(str(kwargs["device"]))
        return func(*args, **kwargs)


def _reads(pipe, backbone, steps: int, **kwargs) -> int:
    counter = CountOps()
    with counter:
        _run(pipe, backbone, num_inference_steps=steps, **kwargs)
    if kwargs.get("motion_guidance_scale"):
        history = pipe.motion_guidance_history
        assert len(history) == steps and all(r.guided and isinstance(r.timestep, float) for r in history)
    return counter.reads


@pytest.mark.parametrize("name", ["cogvideox-2b-ddim", "cogvideox-5b-dpm", "wan-unipc"])
def test_guidance_adds_no_host_sync_per_step(name):
    backbone = BACKBONES[name]
    _, pipe = backbone.pipelines()
    prior = backbone.prior()
    guided = dict(motion_prior=prior, motion_guidance_scale=0.5, motion_guidance_window=1.0)
    extra = {}
    for steps in (4, 8):
        extra[steps] = _reads(pipe, backbone, steps, **guided) - _reads(pipe, backbone, steps)
    # what LaMo reads back happens once, after the loop (timesteps, NaN/inf verdicts) — not per step
    assert extra[4] == extra[8] <= 2, extra
    recorded = _reads(pipe, backbone, 6, motion_prior=prior, motion_guidance_scale=0.0, motion_guidance_record=True) - _reads(pipe, backbone, 6)
    assert recorded <= 1, recorded  # λ = 0 with recording: the timesteps only


def test_scheduler_tables_are_copied_to_the_device_once():
    from diffusers import CogVideoXDDIMScheduler, FlowMatchEulerDiscreteScheduler

    scheduler = CogVideoXDDIMScheduler(prediction_type="v_prediction", timestep_spacing="trailing")
    adapter = CogVideoXAdapter()
    sample = torch.empty(1, 2, 3, device="meta")
    t = torch.tensor(981, device="meta")
    first, again = CountOps(), CountOps()
    with first:
        a = adapter.noise_level(scheduler, t, sample=sample).alpha_bar
    with again:
        for _ in range(5):
            adapter.noise_level(scheduler, t, sample=sample)
    assert a.device.type == "meta" and first.copies_to == ["meta"] and again.copies_to == [] and again.reads == 0
    cpu = adapter.alpha_bar(scheduler, torch.tensor([981, 1]))
    assert torch.equal(cpu, scheduler.alphas_cumprod[[981, 1]].float())  # same values as direct indexing
    before = on_device(scheduler.alphas_cumprod, "meta")
    assert on_device(scheduler.alphas_cumprod, "meta") is before
    scheduler.alphas_cumprod.mul_(1.0)  # an in-place change invalidates the copy
    changed = CountOps()
    with changed:
        adapter.noise_level(scheduler, t, sample=sample)
    assert changed.copies_to == ["meta"] and on_device(scheduler.alphas_cumprod, "meta") is not before

    euler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    euler.set_timesteps(6)
    wan = WanAdapter()
    count = CountOps()
    with count:
        for i in range(6):
            s = wan.noise_level(euler, euler.timesteps[i], sample=sample, step_index=i).sigma
    assert s.device.type == "meta" and count.copies_to == ["meta"] and count.reads == 0
    euler.set_timesteps(6)  # new sigmas tensor: a new copy, once
    count = CountOps()
    with count:
        for i in range(6):
            wan.noise_level(euler, euler.timesteps[i], sample=sample, step_index=i)
    assert count.copies_to == ["meta"]


@pytest.mark.parametrize("name", ["cogvideox-2b-ddim", "wan-unipc"])
def test_nan_in_guidance_is_reported_after_the_loop_with_its_steps(name):
    backbone = BACKBONES[name]
    _, pipe = backbone.pipelines()
    prior = backbone.prior()
    with torch.no_grad():
        prior.conv_out.bias.fill_(float("nan"))
    scheduler_step = pipe.scheduler.step
    with pytest.raises(NonFiniteGuidanceError, match=r"step\(s\) \[2, 3, 4\] of 5"):
        _run(pipe, backbone, motion_prior=prior, motion_guidance_scale=0.5, motion_guidance_window=0.6)
    assert pipe.scheduler.step == scheduler_step and "step" not in vars(pipe.scheduler)  # wrappers undone
