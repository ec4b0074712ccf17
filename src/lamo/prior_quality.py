"""Prior quality: does the motion prior tell a real clip from a counterfactual of it?

**Look at this before spending GPU hours on sampling.** Motion Prior Guidance can only push samples
toward motion the prior finds plausible; a prior that cannot tell a clip from the same clip played
backwards, frozen or re-timed has nothing to steer with. Two readings, both cheap (no sampling, no
backbone forward pass):

* **validation cosine** — the mean cosine between the prior's field ``f_φ(z_i, c)`` and the true
  τ-lag change ``Δ_τ z_i = z_{i+τ} − z_i`` (docs/design.md §1.4), exactly as
  :meth:`~lamo.prior.MotionPrior.training_loss` reports it (eval mode: no dropout, no noise);
* **win rates** — for each counterfactual ``κ``, how often the real clip's guidance loss is *lower*
  than its counterfactual's: ``L_b(z) < L_b(κ(z))`` with ``L_b`` =
  :func:`lamo.guidance.guidance_loss` (docs/design.md §1.5, the quantity MPG descends), the same prompt
  condition ``c`` for both.

Counterfactuals (:data:`GENERIC_COUNTERFACTUALS`, on any clips; :data:`PHYSICS_COUNTERFACTUALS`, on
the physics world only)::

    reversed         frames in reverse order
    shuffled         frames in a random order other than the original (one permutation per clip)
    frozen           the first frame repeated
    dropped          2× speed: every other frame, padded to F frames — on latents by holding the last
                     kept frame (so its second half is still), on the world by taking the frames of the
                     same clip simulated twice as long
    doubled          ½ speed: every frame twice (covers the first half of the clip)
    gravity_flipped  gravity points up from frame T/3 on (re-simulated; physics.perturb.flip_gravity)
    ball_hidden      ball 0 missing for T/4 frames from frame T/3 (physics.perturb.hide_ball)
    teleported       ball 0 shifted 0.15·S sideways, toward the centre, from frame T/2 on (perturb.teleport)
    restitution      floor and walls bounce with half the world's restitution (re-simulated; perturb.with_restitution)

On latents (:func:`prior_quality`, e.g. a user's ``lamo cache``) the generic ones permute latent
frames; on the world (:func:`world_prior_quality`) every counterfactual is made in pixel space and
encoded with the backbone's VAE, like the real clip (a backbone whose VAE compresses time sees the
re-timed clip as a real re-timed video would look, not as re-ordered latent frames).

**How to count.** A clip whose counterfactual is identical to it (a static clip frozen, a clip with no
bounce under another restitution, a ball hidden while off screen) is left out of that row's ``n``
(``n_same`` says how many). A *tie* — ``|L_real − L_cf| ≤ tie_rtol·max(L_real, L_cf)`` — counts half a
win, so a prior that cannot tell the two apart scores exactly 0.5. The 95 % interval is Clopper–Pearson
(:func:`win_interval`; ``scipy.stats.binomtest(k, n).proportion_ci()`` for whole ``k``), ``p`` a two-sided
sign test on wins against losses (ties dropped), ``ratio`` the mean ``L_b`` of the counterfactuals over
that of the real clips (> 1: the counterfactuals cost the prior more).

**The reference column (f ≡ 0).** With a zero field ``L_b`` is the clip's motion energy
``mean_i ‖z_{i+τ} − z_i‖²``, so counterfactuals with less motion (frozen, doubled) beat the real clip
and ones with more (shuffled, dropped) lose to it *whatever the prior*. A zero-initialised (untrained)
prior predicts exactly zero and reproduces this column to the bit: reversed ties (0.5), frozen is
always preferred (0.0). What the prior has learnt is its distance from this column — read a win rate
against it, never against 50 % alone.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as Fn

from .guidance import guidance_loss
from .motion import check_finite, check_latents, lag_delta
from .prior import MotionPrior

__all__ = [
    "GENERIC_COUNTERFACTUALS", "PHYSICS_COUNTERFACTUALS", "COUNTERFACTUALS", "MIN_FRAMES", "CounterfactualRow",
    "PriorQuality", "frame_index", "latent_counterfactual", "world_counterfactual_frames", "win_interval",
    "prior_quality", "world_prior_quality", "plot_prior_quality", "write_prior_quality",
]

#: Counterfactuals that apply to any clip (latent frames or pixel frames): name → what it does.
GENERIC_COUNTERFACTUALS: dict[str, str] = {
    "reversed": "frames in reverse order",
    "shuffled": "frames in a random order other than the original",
    "frozen": "the first frame repeated",
    "dropped": "2× speed: every other frame",
    "doubled": "½ speed: every frame twice",
}
#: Law-breaking counterfactuals of the physics world (:mod:`lamo.physics.perturb`): name → what it does.
PHYSICS_COUNTERFACTUALS: dict[str, str] = {
    "gravity_flipped": "gravity points up from frame T/3 on",
    "ball_hidden": "ball 0 missing for T/4 frames from T/3",
    "teleported": "ball 0 jumps 0.15·S sideways at T/2",
    "restitution": "bounces with half the world's restitution",
}
COUNTERFACTUALS: dict[str, str] = {**GENERIC_COUNTERFACTUALS, **PHYSICS_COUNTERFACTUALS}
#: Fewest frames each generic counterfactual needs to differ from the clip in a way of its own
#: (with 2 frames, 2× and ½ speed are both just "frozen").
MIN_FRAMES: dict[str, int] = {"reversed": 2, "shuffled": 2, "frozen": 2, "dropped": 3, "doubled": 3}
#: How ``dropped`` fills the frames past the end of the sped-up clip, per path.
PADDING = {"latent": "hold the last kept frame", "pixel": "a longer source: the same clip simulated for 2·T frames"}


# ---------------------------------------------------------------------------------------------
# Counterfactual constructors
# ---------------------------------------------------------------------------------------------


def frame_index(name: str, num_frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Source frame of each output frame of generic counterfactual ``name`` → ``(F,)`` int indices.

    ``clip[frame_index(name, F, rng)]`` is the counterfactual of an ``F``-frame clip; ``rng`` draws
    the permutation of ``"shuffled"`` (never the identity). ``"dropped"`` holds its last kept frame:
    ``[0, 2, 4, …, 2⌊(F−1)/2⌋, 2⌊(F−1)/2⌋, …]``.
    """
    from .physics.perturb import shuffle_frames

    if name not in GENERIC_COUNTERFACTUALS:
        raise ValueError(f"unknown generic counterfactual {name!r}; choose from {list(GENERIC_COUNTERFACTUALS)}")
    F = int(num_frames)
    if F < MIN_FRAMES[name]:
        raise ValueError(f"the {name!r} counterfactual needs clips of at least {MIN_FRAMES[name]} frames, got {F}")
    t = np.arange(F)
    if name == "reversed":
        return t[::-1].copy()
    if name == "shuffled":
        return shuffle_frames(t, rng if rng is not None else np.random.default_rng(0))
    if name == "frozen":
        return np.zeros(F, dtype=t.dtype)
    if name == "dropped":
        return np.minimum(2 * t, 2 * ((F - 1) // 2))
    return t // 2  # doubled


def _clip_rng(seed: int, index: int) -> np.random.Generator:
    """The RNG of clip ``index`` (so a result does not depend on how the clips were batched)."""
    return np.random.default_rng([int(seed), int(index)])


def latent_counterfactual(latents: torch.Tensor, name: str, seed: int = 0, start: int = 0) -> torch.Tensor:
    """Generic counterfactual ``name`` of each clip of ``(N, F, C, H, W)`` latents → same shape.

    ``"shuffled"`` draws clip ``start + j``'s permutation from its own RNG (``seed``, clip index), so
    clip ``j`` of a batch starting at ``start`` gets the same permutation however the set is batched.
    """
    if latents.ndim != 5:
        raise ValueError(f"latents must be (N, F, C, H, W), got shape {tuple(latents.shape)}")
    N, F = latents.shape[:2]
    if name != "shuffled":
        return latents[:, torch.as_tensor(frame_index(name, F))]  # (N, F, C, H, W)
    idx = torch.as_tensor(np.stack([frame_index(name, F, _clip_rng(seed, start + j)) for j in range(N)]))  # (N, F)
    return latents[torch.arange(N)[:, None], idx]  # (N, F, C, H, W)


def _setup_of(world: Any, traj: Any) -> Any:
    """The initial conditions of ``traj``, read off its first frame; refused unless re-running them in
    ``world`` gives ``traj`` back (a clip of another world, or one rounded on disk, would drift)."""
    from .physics.world import Ball, Setup, run

    balls = [Ball(c, float(r), tuple(map(float, p)), tuple(map(float, v)), bool(rest))
             for c, r, p, v, rest in zip(traj.colours, traj.radius, traj.position[0], traj.velocity[0],
                                         traj.floor_contact[0])]  # floor contact at frame 0 = resting
    setup = Setup(traj.scenario, balls, friction=traj.friction, side_walls=traj.side_walls, variant=traj.variant)
    again = run(world, setup).position
    if again.shape != traj.position.shape or not np.allclose(again, traj.position, atol=1e-6):
        raise ValueError("re-simulating this clip in the given world does not reproduce it (another world, or a "
                         "trajectory rounded on disk?); the re-simulated counterfactuals need the clip's own world")
    return setup


def world_counterfactual_frames(world: Any, clip: Any, name: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Counterfactual ``name`` of one physics-world clip, in pixel space → ``(T, S, S, 3)`` uint8.

    ``clip`` is a :class:`lamo.physics.dataset.Clip` of ``world`` (``make_clip(world, seed)``); the
    re-simulated counterfactuals start from its trajectory's first frame.
    Generic ones re-order the rendered frames, except ``"dropped"``: every other frame of the same
    clip simulated for ``2·T`` frames (no held tail). Physics ones are those of :mod:`lamo.physics.perturb`.
    """
    from .physics import perturb
    from .physics.render import render
    from .physics.world import run

    frames, traj = clip.frames, clip.trajectory
    T, S = world.frames, world.size
    if name not in COUNTERFACTUALS:
        raise ValueError(f"unknown counterfactual {name!r}; choose from {list(COUNTERFACTUALS)}")
    if name in GENERIC_COUNTERFACTUALS and name != "dropped":
        return frames[frame_index(name, T, rng)]
    setup = _setup_of(world, traj)
    if name == "dropped":
        longer = replace(world, frames=2 * T)
        return render(run(longer, setup), longer)[::2][:T]  # (T, S, S, 3): 2× speed, no held tail
    if name == "gravity_flipped":
        return perturb.flip_gravity(world, setup, at_frame=T // 3)[0]
    if name == "ball_hidden":
        return perturb.hide_ball(traj, world, 0, T // 3, T // 3 + max(1, T // 4))
    if name == "teleported":
        x = traj.position[T // 2, 0, 0]
        return perturb.teleport(traj, world, 0, T // 2, ((1.0 if x < S / 2 else -1.0) * 0.15 * S, 0.0))
    return perturb.with_restitution(world, setup, world.restitution / 2)[0]  # restitution


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def win_interval(k: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper–Pearson interval of a win rate ``k / n``; ``k`` may be a half-integer (ties count half).

    For whole ``k`` it is ``scipy.stats.binomtest(k, n).proportion_ci(confidence)`` (the exact
    interval); the beta-quantile form extends it continuously to half wins.
    """
    from scipy.stats import beta

    if n <= 0:
        return (math.nan, math.nan)
    a = (1.0 - confidence) / 2
    lo = 0.0 if k <= 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k >= n else float(beta.ppf(1 - a, k + 1, n - k))
    return (lo, hi)


@dataclass
class CounterfactualRow:
    """One counterfactual's comparison with the real clips.

    Attributes:
        name / description: the counterfactual and what it does.
        space: ``"latent"`` (made on latent frames) or ``"pixel"`` (made on frames, then encoded).
        n: clips compared (those whose counterfactual differs from the clip); ``n_same``: left out.
        wins / ties / losses: real ``L_b`` lower / equal (within ``tie_rtol``) / higher.
        win_rate: ``(wins + ties/2) / n``; ``ci``: its Clopper–Pearson interval.
        p_value: two-sided sign test of wins against losses (ties dropped); 1 when all tie.
        ratio: ``guide_cf / guide_real`` (mean ``L_b`` of the counterfactuals over that of the real clips).
        guide_real / guide_cf: mean ``L_b`` of the real clips and of their counterfactuals.
        reference_win_rate / reference_ci: the same comparison with ``f ≡ 0`` (motion energy alone;
            what an untrained prior scores).
        note: how it was made where that matters (``"dropped"``: how the tail was padded).
    """

    name: str
    description: str
    space: str
    n: int
    n_same: int
    wins: int
    ties: int
    losses: int
    win_rate: float
    ci: tuple[float, float]
    p_value: float
    ratio: float
    guide_real: float
    guide_cf: float
    reference_win_rate: float
    reference_ci: tuple[float, float]
    note: str = ""


@dataclass
class PriorQuality:
    """What :func:`prior_quality` / :func:`world_prior_quality` return.

    Attributes:
        rows: one :class:`CounterfactualRow` per counterfactual, in the order asked.
        cosine: mean validation cosine of ``f_φ`` to ``Δ_τ z`` over the real clips (eval mode);
            ``cosine_std`` its spread over clips.
        n: real clips; ``tau``: the lag ``L_b`` and the cosine used; ``tie_rtol``, ``confidence``.
        source: where the clips came from, in words; ``meta``: anything else worth keeping.
    """

    rows: list[CounterfactualRow]
    cosine: float
    cosine_std: float
    n: int
    tau: int
    tie_rtol: float
    confidence: float
    source: str = ""
    meta: dict = field(default_factory=dict)

    def row(self, name: str) -> CounterfactualRow:
        """The row of counterfactual ``name``."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no counterfactual {name!r} in this result; it has {[r.name for r in self.rows]}")

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """The result as a plain-text table (what ``lamo eval prior`` prints)."""
        pct = lambda x: "–" if not math.isfinite(x) else f"{100 * x:5.1f}"  # noqa: E731
        head = ["counterfactual", "n", "win rate % [95 % CI]", "f≡0 ref. %", "L ratio", "wins/ties/losses", "p"]
        lines = []
        for r in self.rows:
            lines.append([r.name, str(r.n), f"{pct(r.win_rate)} [{pct(r.ci[0])} … {pct(r.ci[1])}]",
                          pct(r.reference_win_rate), f"{r.ratio:.3g}", f"{r.wins}/{r.ties}/{r.losses}",
                          f"{r.p_value:.2g}"])
        width = [max(len(x) for x in col) for col in zip(head, *lines)]

        def fmt(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, width)))

        out = [f"prior quality — {self.source}" if self.source else "prior quality",
               f"validation cosine to Δ_τ z (τ = {self.tau}): {self.cosine:.3f} ± {self.cosine_std:.3f} "
               f"over {self.n} clips",
               "win rate: how often the real clip's L_guide is lower than its counterfactual's (ties count half; "
               "50 % = cannot tell)",
               "f≡0 ref.: the same with a zero field (motion energy alone = an untrained prior); read the win rate "
               "against it",
               "", fmt(head), fmt(["-" * w for w in width]), *map(fmt, lines)]
        notes = [f"  {r.name}: {r.note}" for r in self.rows if r.note]
        return "\n".join(out + (["", "notes:", *notes] if notes else []))


class _Tally:
    """Per-clip L_b values of the real clips and of one counterfactual, gathered batch by batch."""

    def __init__(self) -> None:
        self.real: list[torch.Tensor] = []
        self.cf: list[torch.Tensor] = []
        self.real_ref: list[torch.Tensor] = []
        self.cf_ref: list[torch.Tensor] = []
        self.valid: list[torch.Tensor] = []

    def add(self, real, cf, real_ref, cf_ref, valid) -> None:
        for lst, v in ((self.real, real), (self.cf, cf), (self.real_ref, real_ref), (self.cf_ref, cf_ref),
                       (self.valid, valid)):
            lst.append(v.detach().cpu())

    def row(self, name: str, space: str, tie_rtol: float, confidence: float, note: str = "") -> CounterfactualRow:
        from scipy.stats import binomtest

        valid = torch.cat(self.valid)
        real, cf = torch.cat(self.real)[valid].double(), torch.cat(self.cf)[valid].double()
        real_ref, cf_ref = torch.cat(self.real_ref)[valid].double(), torch.cat(self.cf_ref)[valid].double()
        n = int(valid.sum())

        def count(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int, int]:
            tie = (a - b).abs() <= tie_rtol * torch.maximum(a.abs(), b.abs())
            return int(((a < b) & ~tie).sum()), int(tie.sum()), int(((a > b) & ~tie).sum())

        wins, ties, losses = count(real, cf)
        k = wins + 0.5 * ties
        ref_w, ref_t, _ = count(real_ref, cf_ref)
        ref_k = ref_w + 0.5 * ref_t
        ratio = float(cf.mean() / real.mean()) if n and float(real.mean()) > 0 else math.nan
        return CounterfactualRow(
            name=name, description=COUNTERFACTUALS.get(name, name), space=space, n=n, n_same=int((~valid).sum()),
            wins=wins, ties=ties, losses=losses, win_rate=k / n if n else math.nan,
            ci=win_interval(k, n, confidence),
            p_value=float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0,
            ratio=ratio, guide_real=float(real.mean()) if n else math.nan, guide_cf=float(cf.mean()) if n else math.nan,
            reference_win_rate=ref_k / n if n else math.nan, reference_ci=win_interval(ref_k, n, confidence), note=note,
        )


def _energy(z: torch.Tensor, tau: int) -> torch.Tensor:
    """``L_b`` with a zero field: ``mean_i Σ_{c,h,w} (z_i − z_{i+τ})²`` → ``(N,)``; the same operations as
    :func:`guidance_loss` (so a zero-initialised prior reproduces it bit for bit)."""
    dtype = torch.promote_types(z.dtype, torch.float32)
    residual = z[:, :-tau].to(dtype) - z[:, tau:].to(dtype)  # (N, F−τ, C, H, W)
    return residual.pow(2).sum(dim=(2, 3, 4)).mean(1)  # (N,)


class _Scorer:
    """Scores batches of real clips and their counterfactuals under one prior (no gradients)."""

    def __init__(self, prior: MotionPrior, tau: int, names: Sequence[str]):
        self.prior, self.tau = prior, tau
        p = next(prior.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.tallies = {name: _Tally() for name in names}
        self.cosines: list[torch.Tensor] = []
        self.n = 0

    def guide(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        L = guidance_loss(self.prior, z, cond, self.tau)  # (N,)
        check_finite(L, "the prior's guidance loss L_guide on these clips")
        return L

    def add(self, real: torch.Tensor, cond: torch.Tensor | None, cfs: Mapping[str, torch.Tensor],
            same: Mapping[str, torch.Tensor] | None = None) -> None:
        """``real`` ``(n, F, C, H, W)``; ``cfs`` name → counterfactual latents of the same shape; ``same``
        name → ``(n,)`` bool, clips whose counterfactual is identical to them (default: compare latents)."""
        real = real.to(self.device, torch.promote_types(real.dtype, torch.float32))
        cond = None if cond is None else cond.to(self.device, torch.float32)
        check_finite(real if cond is None else torch.cat([real.flatten(), cond.flatten()]),
                     f"the latents and prompt conditions of clips {self.n}…{self.n + len(real) - 1}")
        with torch.no_grad():
            # the cosine of MotionPrior.training_loss in eval mode, at this τ: per τ-pair, then mean per clip
            field = self.prior.predict_motion(real, cond, self.tau).float()  # (n, F−τ, C, H, W)
            target = lag_delta(real, self.tau).float()  # (n, F−τ, C, H, W)
            cos = Fn.cosine_similarity(field.flatten(2), target.flatten(2), dim=2, eps=1e-8).mean(1)  # (n,)
            self.cosines.append(cos.cpu())
            g_real, e_real = self.guide(real, cond), _energy(real, self.tau)
            for name, cf in cfs.items():
                cf = cf.to(real.device, real.dtype)
                if same is not None and name in same:
                    identical = torch.as_tensor(same[name], dtype=torch.bool)
                else:
                    identical = (cf == real).flatten(1).all(1).cpu()  # (n,)
                self.tallies[name].add(g_real, self.guide(cf, cond), e_real, _energy(cf, self.tau), ~identical)
        self.n += len(real)

    def result(self, space: str, tie_rtol: float, confidence: float, source: str, notes: Mapping[str, str],
               meta: dict | None = None) -> PriorQuality:
        cos = torch.cat(self.cosines).double()
        rows = [t.row(name, space, tie_rtol, confidence, notes.get(name, "")) for name, t in self.tallies.items()]
        return PriorQuality(rows=rows, cosine=float(cos.mean()), cosine_std=float(cos.std()) if len(cos) > 1 else 0.0,
                            n=self.n, tau=self.tau, tie_rtol=tie_rtol, confidence=confidence, source=source,
                            meta=dict(meta or {}))


def _check_names(names: Sequence[str], allowed: Mapping[str, str], where: str) -> list[str]:
    names = list(names)
    if not names:
        raise ValueError("no counterfactuals asked for")
    if bad := [n for n in names if n not in allowed]:
        extra = (" (the physics ones need the physics world: use world_prior_quality / `--world`)"
                 if any(b in PHYSICS_COUNTERFACTUALS for b in bad) else "")
        raise ValueError(f"unknown counterfactual(s) {bad} {where}; choose from {list(allowed)}{extra}")
    if len(set(names)) != len(names):
        raise ValueError(f"counterfactuals listed twice: {names}")
    return names


def _check_tau(prior: MotionPrior, tau: int | None) -> int:
    tau = prior.config.tau if tau is None else tau
    if not isinstance(tau, int) or isinstance(tau, bool) or tau < 1:
        raise ValueError(f"tau must be a positive integer number of latent frames, got {tau!r}")
    return tau


def _check_frames(names: Sequence[str], num_frames: int, tau: int, what: str) -> None:
    if num_frames <= tau:
        raise ValueError(f"{what} have {num_frames} latent frames but L_guide at tau={tau} needs at least {tau + 1}; "
                         "use longer clips or a prior with a smaller tau (--tau)")
    for name in names:
        if name in MIN_FRAMES and num_frames < MIN_FRAMES[name]:
            raise ValueError(f"the {name!r} counterfactual needs at least {MIN_FRAMES[name]} frames, the {what} have "
                             f"{num_frames}; leave it out")


# ---------------------------------------------------------------------------------------------
# On latents
# ---------------------------------------------------------------------------------------------


def prior_quality(
    prior: MotionPrior,
    latents: torch.Tensor,
    cond: torch.Tensor | None,
    counterfactuals: Sequence[str] = tuple(GENERIC_COUNTERFACTUALS),
    *,
    tau: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    tie_rtol: float = 1e-6,
    confidence: float = 0.95,
    source: str = "latent clips",
) -> PriorQuality:
    """Validation cosine and win rates against generic counterfactuals, on latent clips.

    Args:
        prior: a trained :class:`~lamo.prior.MotionPrior` (used in eval mode, not changed).
        latents: ``(N, F, C, H, W)`` clean latents in the backbone's space (e.g. a ``lamo cache``).
        cond: ``(N, D)`` pooled prompt embeddings (the prior's condition), or ``None`` (its null condition).
        counterfactuals: names from :data:`GENERIC_COUNTERFACTUALS`, made on latent frames.
        tau: lag of ``L_guide`` and of the cosine; the prior's own by default.
        seed: draws the ``"shuffled"`` permutations (one per clip, independent of ``batch_size``).
        tie_rtol: relative difference under which two ``L_b`` tie (a tie counts half a win).
        confidence: of the win-rate intervals.

    Returns:
        :class:`PriorQuality`; ``"dropped"`` holds its last kept frame (there is no longer source).
    """
    names = _check_names(counterfactuals, GENERIC_COUNTERFACTUALS, "on latents")
    tau = _check_tau(prior, tau)
    check_latents(latents, tau, "latents", channels=prior.config.latent_channels)
    N, F = latents.shape[:2]
    if cond is not None:
        if cond.ndim != 2 or cond.shape[0] != N:
            raise ValueError(f"cond must be (N, D) with one pooled prompt per clip: latents have N = {N} clips, "
                             f"cond has shape {tuple(cond.shape)}")
        prior.check_compatible(latents.shape[2], cond.shape[1])
    _check_frames(names, F, tau, "latents")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    was_training = prior.training
    prior.eval()
    try:
        scorer = _Scorer(prior, tau, names)
        for s in range(0, N, batch_size):
            z = latents[s:s + batch_size]
            c = None if cond is None else cond[s:s + batch_size]
            scorer.add(z, c, {name: latent_counterfactual(z, name, seed, start=s) for name in names})
    finally:
        prior.train(was_training)
    notes = {"dropped": f"2× speed, padded: {PADDING['latent']} (the second half of the clip is still)"}
    return scorer.result("latent", tie_rtol, confidence, source, notes, {"seed": seed})


# ---------------------------------------------------------------------------------------------
# On the physics world, through a backbone's VAE and text encoder
# ---------------------------------------------------------------------------------------------


def _demo_meta(pipe: Any) -> dict | None:
    """The backbone folder's ``lamo_demo.json`` (the shipped demo backbone has one), or ``None``."""
    path = Path(str(getattr(pipe, "name_or_path", "") or "")) / "lamo_demo.json"
    return json.loads(path.read_text()) if path.is_file() else None


def world_prior_quality(
    pipe: Any,
    prior: MotionPrior,
    world: Any = "tiny",
    n: int = 256,
    seed: int = 5,
    counterfactuals: Sequence[str] = tuple(COUNTERFACTUALS),
    *,
    tau: int | None = None,
    batch_size: int = 64,
    max_sequence_length: int | None = None,
    tie_rtol: float = 1e-6,
    confidence: float = 0.95,
    progress: bool = False,
) -> PriorQuality:
    """Validation cosine and win rates on ``n`` clips of the physics world, encoded by ``pipe``.

    Each clip ``i`` is ``make_clip(world, clip_seed(seed, i))``; its counterfactuals are made in pixel
    space (:func:`world_counterfactual_frames`), then clip and counterfactuals are encoded with the
    backbone's VAE (``adapter.encode_video``, posterior mode) and the clip's caption with its text
    encoder (pooled as the prior expects). ``lamo demo`` trains its priors on seed 2 and chooses λ on
    seed 4; the default seed 5 is neither.

    Args:
        pipe: a LaMo pipeline of the backbone (e.g. the shipped demo backbone).
        prior: a motion prior trained on that backbone's latents.
        world: a :class:`~lamo.physics.world.WorldConfig` or preset name — the world the backbone makes.
        max_sequence_length: prompt tokens; ``None``: the demo backbone's own (``lamo_demo.json``), else
            the family's default.
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    from .adapters import get_adapter
    from .physics.dataset import clip_seed, make_clip
    from .physics.world import get_world_config

    names = _check_names(counterfactuals, COUNTERFACTUALS, "on the physics world")
    tau = _check_tau(prior, tau)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"the number of clips must be an integer ≥ 1, got {n!r}")
    world = get_world_config(world)
    for name in names:
        if name in MIN_FRAMES and world.frames < MIN_FRAMES[name]:
            raise ValueError(f"the {name!r} counterfactual needs at least {MIN_FRAMES[name]} frames, the world has "
                             f"{world.frames}")
    meta = _demo_meta(pipe)
    if meta is not None:
        p = meta["preset"]
        if (world.size, world.frames) != (p["size"], p["frames"]):
            raise ValueError(f"the backbone makes {p['frames']} frames of {p['size']} px but the world has "
                             f"{world.frames} of {world.size} px; pass the world it was trained on")
        if max_sequence_length is None:
            max_sequence_length = int(p["max_text_len"])
    adapter = get_adapter(pipe)
    was_training = prior.training
    prior.eval()
    scorer = _Scorer(prior, tau, names)
    bar = tqdm(total=n, desc="prior quality", unit="clip", disable=not progress, dynamic_ncols=True)
    try:
        for s in range(0, n, batch_size):
            clips = [make_clip(world, clip_seed(seed, i)) for i in range(s, min(n, s + batch_size))]
            real_frames = np.stack([c.frames for c in clips])  # (b, T, S, S, 3)
            cf_frames = {name: np.stack([world_counterfactual_frames(world, c, name, _clip_rng(seed, s + j))
                                         for j, c in enumerate(clips)]) for name in names}
            same = {name: torch.as_tensor([np.array_equal(a, b) for a, b in zip(f, real_frames)])
                    for name, f in cf_frames.items()}
            with torch.no_grad():
                real = adapter.encode_video(pipe.vae, real_frames, sample=False)  # (b, F, C, h, w)
                emb = adapter.encode_prompt(pipe, [c.caption for c in clips], max_sequence_length=max_sequence_length)
                cond = adapter.pool_prompt(emb)  # (b, D)
                if s == 0:
                    prior.check_compatible(real.shape[2], cond.shape[1])
                    _check_frames(names, real.shape[1], tau, "encoded world clips")
                cfs = {name: adapter.encode_video(pipe.vae, f, sample=False) for name, f in cf_frames.items()}
            scorer.add(real, cond, cfs, same)
            bar.update(len(clips))
    finally:
        bar.close()
        prior.train(was_training)
    source = (f"physics world ({world.size} px, {world.frames} frames; clips of seed {seed}) encoded by "
              f"{getattr(pipe, 'name_or_path', '') or type(pipe).__name__}")
    notes = {"dropped": f"2× speed, padded: {PADDING['pixel']}, every other frame (nothing held)"}
    return scorer.result("pixel", tie_rtol, confidence, source, notes,
                         {"seed": seed, "world": world.to_dict(), "max_sequence_length": max_sequence_length})


# ---------------------------------------------------------------------------------------------
# Plot and files
# ---------------------------------------------------------------------------------------------


def plot_prior_quality(path: str | Path, result: PriorQuality, title: str | None = None) -> Path:
    """Bar chart of the win rates with their intervals, a line at 50 % (cannot tell) and the ``f ≡ 0``
    reference as a marker; bars green where the interval lies above 50 %, red below, grey across."""
    from .report import _pyplot, _save

    plt = _pyplot()
    rows = result.rows
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.0 * len(rows) + 2.5, 4.2), dpi=110)
    rate = np.array([100 * r.win_rate for r in rows])
    lo = np.array([100 * r.ci[0] for r in rows])
    hi = np.array([100 * r.ci[1] for r in rows])
    colours = ["#2a9d4b" if r.ci[0] > 0.5 else "#c44e52" if r.ci[1] < 0.5 else "#7f7f7f" for r in rows]
    ax.bar(x, np.nan_to_num(rate), color=colours, width=0.65)
    ax.errorbar(x, rate, yerr=[np.clip(rate - lo, 0, None), np.clip(hi - rate, 0, None)], fmt="none", ecolor="#222",
                capsize=3, lw=1)
    ax.plot(x, [100 * r.reference_win_rate for r in rows], "D", mfc="none", mec="#1f4e99", ms=6, clip_on=False,
            label="f ≡ 0 reference (motion energy = untrained prior)")
    ax.axhline(50, color="#333", ls="--", lw=0.9, label="50 % (cannot tell)")
    for xi, r in zip(x, rows):
        ax.text(xi, 101, f"n={r.n}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [r.name for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 108)
    ax.set_ylabel("real clip ranked above counterfactual, %", fontsize=8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)
    ax.set_title(title or f"prior quality (τ = {result.tau}): validation cosine {result.cosine:.3f}, "
                          f"{result.n} clips, {int(100 * result.confidence)} % CI", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def write_prior_quality(out: str | Path, result: PriorQuality, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``out/table.json`` (the result, plus ``extra``) and ``out/prior_quality.png``; return both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "table.json"
    table.write_text(json.dumps({**result.to_dict(), **(extra or {}), "table": result.table()}, indent=2,
                                default=float) + "\n")
    return table, plot_prior_quality(out / "prior_quality.png", result)
