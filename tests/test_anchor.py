"""The anchor to the frozen starting model (``--anchor-weight`` β: ``L += β·mean((v_θ − v_0)²)``) in both trainers:
``lamo train finetune`` (FinetuneLoss; LoRA: adapters disabled, full: a frozen copy) and ``lamo demo train-backbone``."""
import json

import pytest
import torch
from diffusers import CogVideoXPipeline, CogVideoXTransformer3DModel

from lamo.adapters import get_adapter
from lamo.cli import main
from lamo.training.finetune import FinetuneLoss


def _pipe(root):
    return CogVideoXPipeline.from_pretrained(root / "model", tokenizer=None, text_encoder=None)


def _perturb(params, seed=1, scale=0.05):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.add_(scale * torch.randn(p.shape, generator=g))


def test_full_anchor_is_zero_at_the_start_then_pulls_back_without_touching_the_reference(drifting_cache):
    import copy

    root, latents, embeds = drifting_cache
    pipe = _pipe(root)
    adapter = get_adapter(pipe)
    ref = copy.deepcopy(pipe.transformer)
    plain = FinetuneLoss(pipe.transformer, pipe.scheduler, adapter, 0.4, "normalized", 1)
    anch = FinetuneLoss(pipe.transformer, pipe.scheduler, adapter, 0.4, "normalized", 1, anchor_weight=5.0, reference=ref)
    # the start: model == reference, so the anchor adds exactly 0
    assert torch.equal(plain(latents[:4], embeds[:4], seed=7)[0], anch(latents[:4], embeds[:4], seed=7)[0])
    assert anch.last_anchor == 0
    # the weights moved: the anchor is positive and its gradient reaches the trained weights, never the reference
    _perturb(pipe.transformer.parameters())
    loss_plain = plain(latents[:4], embeds[:4], seed=7)[0]
    loss = anch(latents[:4], embeds[:4], seed=7)[0]
    assert anch.last_anchor > 0
    assert torch.allclose(loss, loss_plain + 5.0 * anch.last_anchor, rtol=1e-5)
    (loss - loss_plain).backward()  # the anchor's own gradient
    assert sum(float(p.grad.abs().sum()) for p in pipe.transformer.parameters() if p.grad is not None) > 0
    assert all(p.grad is None and not p.requires_grad for p in ref.parameters())
    # v_0 is the reference's prediction on the same x_t, t, prompt: the anchor equals it computed by hand
    g = torch.Generator().manual_seed(7)
    tf = adapter.training_forward(pipe.transformer, pipe.scheduler, latents[:4], embeds[:4], generator=g)
    tf0 = adapter.training_forward(ref, pipe.scheduler, latents[:4], embeds[:4], generator=torch.Generator().manual_seed(7))
    assert torch.equal(tf.timesteps, tf0.timesteps)
    assert torch.allclose(anch.last_anchor, (tf.pred - tf0.pred).pow(2).mean(), rtol=1e-5)
    # the reference is no submodule: it stays out of the state dict (checkpoints) and the optimiser
    assert set(anch.state_dict()) == set(plain.state_dict())


def test_lora_anchor_is_the_model_with_its_adapters_disabled(drifting_cache):
    from peft import LoraConfig

    root, latents, embeds = drifting_cache
    pipe = _pipe(root)
    adapter = get_adapter(pipe)
    t = pipe.transformer
    t.requires_grad_(False)
    t.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=True, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    anch = FinetuneLoss(t, pipe.scheduler, adapter, 0.0, "normalized", 1, anchor_weight=3.0)
    anch(latents[:4], embeds[:4], seed=3)
    assert anch.last_anchor == 0  # LoRA starts as the identity: the model is its reference
    lora = [p for n, p in t.named_parameters() if "lora_B" in n]
    _perturb(lora)
    plain = FinetuneLoss(t, pipe.scheduler, adapter, 0.0, "normalized", 1)
    loss = anch(latents[:4], embeds[:4], seed=3)[0] - plain(latents[:4], embeds[:4], seed=3)[0]
    assert anch.last_anchor > 0
    loss.backward()
    assert sum(float(p.grad.abs().sum()) for p in lora) > 0
    # the adapters are on again after the reference's forward, and the base weights never get a gradient
    base = [p for n, p in t.named_parameters() if "lora_" not in n]
    assert all(p.grad is None for p in base)
    with torch.no_grad():
        on = adapter.training_forward(t, pipe.scheduler, latents[:2], embeds[:2], generator=torch.Generator().manual_seed(0)).pred
        t.disable_adapters()
        off = adapter.training_forward(t, pipe.scheduler, latents[:2], embeds[:2], generator=torch.Generator().manual_seed(0)).pred
        t.enable_adapters()
    assert not torch.allclose(on, off)


def _run(root, out, *extra, steps="20", lora="0"):
    assert main(["train", "finetune", "--model", str(root / "model"), "--cache", str(root / "cache"), "--lora-rank", lora,
                 "--steps", steps, "--batch-size", "4", "--lr", "5e-3", "--drift-weight", "0", "--save-every", "2",
                 "--log-with", "none", "--seed", "3", "--out", str(out), *extra]) == 0


def _distance(a, b):
    return sum(float((a[k] - b[k]).pow(2).sum()) for k in a) ** 0.5


def test_anchor_zero_is_todays_run_and_a_big_anchor_stays_near_the_start(drifting_cache, tmp_path):
    root, _, _ = drifting_cache
    start = CogVideoXTransformer3DModel.from_pretrained(root / "model", subfolder="transformer").state_dict()
    _run(root, tmp_path / "default")
    _run(root, tmp_path / "zero", "--anchor-weight", "0")
    _run(root, tmp_path / "big", "--anchor-weight", "100")
    w = {k: CogVideoXTransformer3DModel.from_pretrained(tmp_path / k / "transformer").state_dict()
         for k in ("default", "zero", "big")}
    assert all(torch.equal(w["default"][k], w["zero"][k]) for k in start)  # β = 0: bit-identical
    assert "anchor" not in json.loads((tmp_path / "zero" / "loss.jsonl").read_text().splitlines()[0])
    log = [json.loads(x) for x in (tmp_path / "big" / "loss.jsonl").read_text().splitlines()]
    assert log[0]["anchor"] == 0 and all(r["anchor"] > 0 for r in log[1:])  # logged: 0 at the start, then > 0
    free, anchored = _distance(w["zero"], start), _distance(w["big"], start)
    assert anchored < 0.8 * free, (anchored, free)  # measured: 2.10 vs 4.58


@pytest.mark.parametrize("lora", ["0", "4"])
def test_an_anchored_run_resumes_to_the_same_weights(drifting_cache, tmp_path, lora):
    """The frozen reference comes from --model on resume (the checkpoint holds none): the resumed run is the
    uninterrupted one."""
    root, _, _ = drifting_cache
    _run(root, tmp_path / "a", "--anchor-weight", "10", steps="4", lora=lora)
    _run(root, tmp_path / "b", "--anchor-weight", "10", "--max-steps-this-run", "2", steps="4", lora=lora)
    _run(root, tmp_path / "b", "--anchor-weight", "10", "--resume-from-checkpoint", "latest", steps="4", lora=lora)
    la = [json.loads(x)["anchor"] for x in (tmp_path / "a" / "loss.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["anchor"] for x in (tmp_path / "b" / "loss.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, rel=1e-5) and la[-1] > 0
    if lora == "0":
        a = CogVideoXTransformer3DModel.from_pretrained(tmp_path / "a" / "transformer").state_dict()
        b = CogVideoXTransformer3DModel.from_pretrained(tmp_path / "b" / "transformer").state_dict()
    else:
        from safetensors.torch import load_file

        a = load_file(tmp_path / "a" / "lora" / "pytorch_lora_weights.safetensors")
        b = load_file(tmp_path / "b" / "lora" / "pytorch_lora_weights.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


# ---- lamo demo train-backbone ----

@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    from bench_scripts import tiny_world_backbone

    root = tmp_path_factory.mktemp("bb")
    return root, tiny_world_backbone(root)


def test_demo_trainer_refuses_an_anchor_without_a_start(backbone, tmp_path, capsys):
    root, _ = backbone
    rc = main(["demo", "train-backbone", "--data", str(root / "data"), "--preset", "test", "--out", str(tmp_path / "x"),
               "--steps", "1", "--anchor-weight", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--anchor-weight" in err and "--init-from" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x" / "checkpoints").exists()


def _demo_ft(root, bb, out, beta):
    from lamo.demo.train_backbone import BackboneTrainConfig, train_backbone

    return train_backbone(BackboneTrainConfig(data=str(root / "data"), out=str(out), preset="test", init_from=str(bb),
                                              train_text_encoder=False, steps=12, batch_size=4, lr=5e-3, warmup=1,
                                              save_every=1, ema_decay=0.0, seed=5, threads=1, anchor_weight=beta))


def test_demo_trainer_anchor_is_zero_at_the_start_and_keeps_the_weights_near_it(backbone, tmp_path):
    root, bb = backbone
    start = CogVideoXTransformer3DModel.from_pretrained(bb / "transformer").state_dict()
    free = _demo_ft(root, bb, tmp_path / "free", 0.0)
    tied = _demo_ft(root, bb, tmp_path / "tied", 100.0)
    log = [json.loads(x) for x in (tmp_path / "tied" / "loss.jsonl").read_text().splitlines()]
    assert log[0]["anchor"] == 0 and log[-1]["anchor"] > 0
    assert "anchor" not in json.loads((tmp_path / "free" / "loss.jsonl").read_text().splitlines()[0])
    d_free = _distance(CogVideoXTransformer3DModel.from_pretrained(free / "transformer").state_dict(), start)
    d_tied = _distance(CogVideoXTransformer3DModel.from_pretrained(tied / "transformer").state_dict(), start)
    assert d_tied < 0.8 * d_free, (d_tied, d_free)  # measured: 0.77 vs 2.12


def test_demo_trainer_anchor_with_the_text_encoder_trained_too(backbone, tmp_path):
    """When the text encoder learns, v_0 reads the caption through the frozen start's text encoder (in eval mode:
    round-off apart, the same embedding at the start)."""
    from lamo.demo.train_backbone import BackboneTrainConfig, train_backbone

    root, bb = backbone
    train_backbone(BackboneTrainConfig(data=str(root / "data"), out=str(tmp_path / "te"), preset="test", init_from=str(bb),
                                       train_text_encoder=True, steps=3, batch_size=4, lr=5e-3, warmup=1, save_every=1,
                                       seed=5, threads=1, anchor_weight=10.0))
    log = [json.loads(x) for x in (tmp_path / "te" / "loss.jsonl").read_text().splitlines()]
    assert log[0]["anchor"] < 1e-12 and log[-1]["anchor"] > 1e-6, log  # measured: 1.6e-15, then 0.011
