"""A deterministic 2D world of coloured balls with known physics (docs/design.md §3).

Units are those of the rendered video: **pixels** and **frames**. Positions are continuous image
coordinates — ``x`` to the right, ``y`` *down*, the image spans ``[0, W] × [0, H]`` and pixel
``(row i, col j)`` covers ``[j, j+1] × [i, i+1]`` (its centre is ``(j + ½, i + ½)``). Velocities are in
px/frame, gravity ``g`` in px/frame² (positive = down); ``fps`` only matters when a clip is written
to a file. Frame ``t`` shows the world at time ``t`` (frames).

Physics, integrated in ``substeps`` per frame with exact contact times for the walls and floor:

* free flight:   ``x(t) = x₀ + vₓ t``,  ``y(t) = y₀ + v_y t + ½ g t²``  (the update is exact);
* floor ``y = H − r`` and side walls ``x = r``, ``x = W − r`` (no ceiling): at the exact time of contact
  the normal velocity is reflected and scaled by the restitution ``e``: ``v_n ← −e·v_n``;
* a ball whose bounce would be slower than ``g/4`` px/frame settles on the floor (its hop would be
  lower than ``g/32`` px) and from then on rolls, decelerated by Coulomb friction ``μ·g`` px/frame²;
* ball–ball contacts: an impulse along the line of centres with masses ``m ∝ r²`` (discs) and
  restitution ``e_b`` (1 = elastic: kinetic energy and momentum conserved), detected at substep
  resolution; overlap is removed by moving the balls apart along that line.

:func:`simulate` = :func:`sample_setup` (random initial conditions of a scenario family, from a numpy
``Generator`` seeded with ``seed``) + :func:`run` (deterministic integration). Same seed → identical
:class:`Trajectory`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

__all__ = [
    "PALETTE", "BACKGROUND", "SCENARIOS", "WorldConfig", "WORLD_PRESETS", "get_world_config",
    "Ball", "Setup", "ContactEvent", "Trajectory", "sample_setup", "run", "simulate",
]

# ---------------------------------------------------------------------------------------------
# Palette and configuration
# ---------------------------------------------------------------------------------------------

#: Ball colours (RGB, 0–255), chosen to be far apart from each other *and* from the background along
#: every background→colour blend line, so the tracker can tell anti-aliased edges apart.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 220, 40),
    "magenta": (220, 50, 220),
    "cyan": (40, 220, 230),
    "orange": (250, 140, 20),
    "white": (240, 240, 240),
}
#: Plain dark background (RGB).
BACKGROUND: tuple[int, int, int] = (20, 20, 28)

#: Scenario families; see :func:`sample_setup`.
SCENARIOS = ("throw", "drop", "roll", "collide", "pass")


@dataclass
class WorldConfig:
    """Everything that defines the world. Stored as ``world.json`` next to a dataset.

    Units: pixels and frames at the render resolution (``gravity`` in px/frame²).
    """

    size: int = 32  # H = W, px
    frames: int = 16  # frames per clip (T)
    fps: float = 8.0  # only for writing video files
    gravity: float = 0.5  # g, px/frame², positive = down
    restitution: float = 0.8  # e for the floor and walls, in [0, 1]
    ball_restitution: float = 1.0  # e_b between balls (1 = elastic)
    radius: tuple[float, float] = (2.5, 4.0)  # ball radius range, px
    max_balls: int = 2  # the "drop" family drops 1..max_balls balls; "collide" always uses 2
    friction: tuple[float, ...] = (0.0, 0.1)  # μ choices for rolling (deceleration μ·g)
    scenarios: dict[str, float] = field(
        default_factory=lambda: {"throw": 0.3, "drop": 0.25, "roll": 0.15, "collide": 0.2, "pass": 0.1}
    )  # family -> sampling weight
    colours: tuple[str, ...] = tuple(PALETTE)  # palette names balls are drawn from
    substeps: int = 16  # integration substeps per frame
    supersample: int = 4  # renderer: s × s samples per pixel

    def __post_init__(self) -> None:
        self.radius = tuple(float(r) for r in self.radius)
        self.friction = tuple(float(m) for m in self.friction)
        self.colours = tuple(self.colours)
        self.scenarios = {str(k): float(v) for k, v in dict(self.scenarios).items()}
        problems = []
        if self.size < 8:
            problems.append(f"size must be ≥ 8 px, got {self.size}")
        if self.frames < 3:
            problems.append(f"frames must be ≥ 3, got {self.frames}")
        if not 0.0 <= self.restitution <= 1.0 or not 0.0 <= self.ball_restitution <= 1.0:
            problems.append("restitution and ball_restitution must lie in [0, 1]")
        if len(self.radius) != 2 or not 1.0 <= self.radius[0] <= self.radius[1] < self.size / 4:
            problems.append(f"radius must be (min, max) with 1 ≤ min ≤ max < size/4, got {self.radius}")
        elif self.radius[1] > 0.2 * self.size - 1:
            # the "collide" family starts each ball within the outer 20 % of the width
            problems.append(f"the largest radius must be ≤ 0.2·size − 1 = {0.2 * self.size - 1:g} px for size "
                            f"{self.size}, got {self.radius[1]}")
        if unknown := [c for c in self.colours if c not in PALETTE]:
            problems.append(f"unknown colours {unknown}; the palette is {list(PALETTE)}")
        if len(self.colours) < 2:
            problems.append("at least 2 colours are needed (the 'collide' family uses two balls)")
        if unknown := [s for s in self.scenarios if s not in SCENARIOS]:
            problems.append(f"unknown scenarios {unknown}; the families are {list(SCENARIOS)}")
        if not self.scenarios or min(self.scenarios.values()) < 0 or sum(self.scenarios.values()) <= 0:
            problems.append(f"scenario weights must be ≥ 0 with a positive sum, got {self.scenarios}")
        if not 1 <= self.max_balls <= len(self.colours):
            problems.append(f"max_balls must be in [1, {len(self.colours)}], got {self.max_balls}")
        if not self.friction or min(self.friction) < 0:
            problems.append(f"friction must be a non-empty tuple of μ ≥ 0, got {self.friction}")
        if self.substeps < 1 or self.supersample < 1:
            problems.append("substeps and supersample must be ≥ 1")
        if problems:
            raise ValueError("invalid WorldConfig: " + "; ".join(problems))

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "WorldConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (they mean another version wrote it)."""
        names = {f.name for f in fields(cls)}
        if unknown := sorted(set(d) - names):
            raise ValueError(f"unknown WorldConfig keys {unknown}; known keys are {sorted(names)}")
        return cls(**d)


#: Named presets. ``tiny`` is the demo's world (docs/design.md §3): cheap enough for a 2-core CPU.
WORLD_PRESETS: dict[str, WorldConfig] = {
    "tiny": WorldConfig(size=32, frames=16, fps=8.0, gravity=0.5, radius=(2.5, 4.0)),
    "small": WorldConfig(size=48, frames=24, fps=12.0, gravity=0.35, radius=(3.0, 5.5), max_balls=3),
    "medium": WorldConfig(size=64, frames=32, fps=16.0, gravity=0.25, radius=(3.5, 7.0), max_balls=3),
}


def get_world_config(preset: str | WorldConfig, **overrides) -> WorldConfig:
    """A copy of a preset (by name) or of a config, with ``overrides`` applied."""
    if isinstance(preset, WorldConfig):
        return replace(preset, **overrides)
    if preset not in WORLD_PRESETS:
        raise ValueError(f"unknown world preset {preset!r}; choose one of {list(WORLD_PRESETS)}")
    return replace(WORLD_PRESETS[preset], **overrides)


# ---------------------------------------------------------------------------------------------
# Initial conditions and results
# ---------------------------------------------------------------------------------------------


@dataclass
class Ball:
    """Initial state of one ball."""

    colour: str
    radius: float  # px
    position: tuple[float, float]  # (x, y) px
    velocity: tuple[float, float] = (0.0, 0.0)  # px/frame
    resting: bool = False  # starts on the floor (rolling / at rest)


@dataclass
class Setup:
    """Initial conditions of one clip."""

    scenario: str
    balls: list[Ball]
    friction: float = 0.0  # μ while rolling
    side_walls: bool = True  # False: balls may leave through the sides ("pass")
    variant: str = ""  # e.g. "air" / "floor" for "collide"


@dataclass
class ContactEvent:
    """One impact: ``kind`` is "floor", "wall" or "ball"; ``balls`` the ball indices; ``time`` in frames."""

    time: float
    kind: str
    balls: tuple[int, ...]

    def __post_init__(self) -> None:
        self.time, self.balls = float(self.time), tuple(int(b) for b in self.balls)


@dataclass
class Trajectory:
    """Exact per-frame ground truth of one clip (``T`` frames, ``K`` balls).

    Contact flags at frame ``t`` mean an impact happened in ``(t−1, t]``; ``floor_contact`` is also set
    while a ball rests or rolls on the floor. ``visible``: some of the disc is inside the image.
    """

    scenario: str
    seed: int | None
    colours: tuple[str, ...]  # (K,)
    radius: np.ndarray  # (K,) px
    position: np.ndarray  # (T, K, 2) px, (x, y)
    velocity: np.ndarray  # (T, K, 2) px/frame
    visible: np.ndarray  # (T, K) bool
    floor_contact: np.ndarray  # (T, K) bool
    wall_contact: np.ndarray  # (T, K) bool
    ball_contact: np.ndarray  # (T, K) bool
    events: list[ContactEvent]
    friction: float = 0.0
    side_walls: bool = True
    variant: str = ""

    @property
    def num_frames(self) -> int:
        return self.position.shape[0]

    def to_json(self, decimals: int = 4) -> dict:
        """JSON-ready dict (floats rounded to ``decimals``; bool arrays become 0/1 lists)."""
        rnd = lambda a: np.round(a, decimals).tolist()  # noqa: E731
        return {
            "scenario": self.scenario, "variant": self.variant, "seed": self.seed,
            "colours": list(self.colours), "radius": rnd(self.radius),
            "position": rnd(self.position), "velocity": rnd(self.velocity),
            "visible": self.visible.astype(int).tolist(),
            "floor_contact": self.floor_contact.astype(int).tolist(),
            "wall_contact": self.wall_contact.astype(int).tolist(),
            "ball_contact": self.ball_contact.astype(int).tolist(),
            "events": [{"time": round(e.time, decimals), "kind": e.kind, "balls": list(e.balls)} for e in self.events],
            "friction": self.friction, "side_walls": self.side_walls,
        }

    @classmethod
    def from_json(cls, d: dict) -> "Trajectory":
        arr = lambda k, dt=float: np.asarray(d[k], dtype=dt)  # noqa: E731
        return cls(
            scenario=d["scenario"], variant=d.get("variant", ""), seed=d.get("seed"),
            colours=tuple(d["colours"]), radius=arr("radius"),
            position=arr("position").reshape(-1, len(d["colours"]), 2),
            velocity=arr("velocity").reshape(-1, len(d["colours"]), 2),
            visible=arr("visible", bool), floor_contact=arr("floor_contact", bool),
            wall_contact=arr("wall_contact", bool), ball_contact=arr("ball_contact", bool),
            events=[ContactEvent(e["time"], e["kind"], tuple(e["balls"])) for e in d["events"]],
            friction=d.get("friction", 0.0), side_walls=d.get("side_walls", True),
        )


# ---------------------------------------------------------------------------------------------
# Scenario families (random initial conditions)
# ---------------------------------------------------------------------------------------------


def _colours(cfg: WorldConfig, rng: np.random.Generator, k: int) -> list[str]:
    return [cfg.colours[i] for i in rng.choice(len(cfg.colours), size=k, replace=False)]


def _max_up_speed(cfg: WorldConfig, y0: float, r: float) -> float:
    """The upward speed whose apex ``y₀ − v²/2g`` just stays one pixel inside the top edge."""
    return math.sqrt(2.0 * max(cfg.gravity, 1e-6) * max(y0 - r - 1.0, 0.0))


def _drop(cfg: WorldConfig, rng: np.random.Generator) -> Setup:
    S, k = cfg.size, int(rng.integers(1, cfg.max_balls + 1))
    balls: list[Ball] = []
    for colour in _colours(cfg, rng, k):
        r = rng.uniform(*cfg.radius)
        for _ in range(100):  # rejection sampling: no overlap at the start
            x, y = rng.uniform(r + 1, S - r - 1), rng.uniform(r + 1, 0.5 * S)
            if all(math.hypot(x - b.position[0], y - b.position[1]) > r + b.radius + 1 for b in balls):
                balls.append(Ball(colour, r, (x, y)))
                break
    return Setup("drop", balls)


def _throw(cfg: WorldConfig, rng: np.random.Generator) -> Setup:
    S, d = cfg.size, float(rng.choice([-1.0, 1.0]))  # d = +1: thrown to the right
    (colour,), r = _colours(cfg, rng, 1), rng.uniform(*cfg.radius)
    x0 = rng.uniform(r + 1, 0.25 * S)
    x0 = x0 if d > 0 else S - x0
    y0 = rng.uniform(0.3 * S, 0.7 * S)
    vx = d * rng.uniform(0.4, 1.0) * S / cfg.frames
    vy = -rng.uniform(0.2, 1.0) * _max_up_speed(cfg, y0, r)
    return Setup("throw", [Ball(colour, r, (x0, y0), (vx, vy))])


def _roll(cfg: WorldConfig, rng: np.random.Generator) -> Setup:
    S, d = cfg.size, float(rng.choice([-1.0, 1.0]))
    (colour,), r = _colours(cfg, rng, 1), rng.uniform(*cfg.radius)
    x0 = rng.uniform(r + 1, 0.3 * S)
    x0 = x0 if d > 0 else S - x0
    vx = d * rng.uniform(0.4, 1.0) * S / cfg.frames
    mu = float(cfg.friction[int(rng.integers(len(cfg.friction)))])
    return Setup("roll", [Ball(colour, r, (x0, S - r), (vx, 0.0), resting=True)], friction=mu)


def _collide(cfg: WorldConfig, rng: np.random.Generator) -> Setup:
    """Two balls aimed at each other so that they meet after ``t_meet`` frames (their relative motion
    is free of gravity, so the aim is exact while both fly)."""
    S, T, g = cfg.size, cfg.frames, cfg.gravity
    (c1, c2), r1, r2 = _colours(cfg, rng, 2), rng.uniform(*cfg.radius), rng.uniform(*cfg.radius)
    t_meet = rng.uniform(0.3, 0.5) * (T - 1)
    xl, xr = rng.uniform(r1 + 1, 0.2 * S), S - rng.uniform(r2 + 1, 0.2 * S)
    v_total = (xr - xl - r1 - r2) / t_meet
    f = rng.uniform(0.35, 0.65)
    vl, vr = v_total * f, -v_total * (1 - f)
    if rng.random() < 0.5:
        balls = [Ball(c1, r1, (xl, S - r1), (vl, 0.0), True), Ball(c2, r2, (xr, S - r2), (vr, 0.0), True)]
        return Setup("collide", balls, variant="floor")
    y0 = rng.uniform(0.35 * S, 0.5 * S)
    vy = -rng.uniform(0.5, 1.5) * g * t_meet / 2  # 1.0 would return to y0 exactly at t_meet
    vy = min(vy, (S - 1 - max(r1, r2) - y0 - 0.5 * g * t_meet**2) / t_meet)  # still above the floor then
    vy = max(vy, -_max_up_speed(cfg, y0, max(r1, r2)))  # apex inside the image
    dy = rng.uniform(-0.4, 0.4) * min(r1, r2)  # off-centre hit
    balls = [Ball(c1, r1, (xl, y0), (vl, vy)), Ball(c2, r2, (xr, y0 + dy), (vr, vy))]
    return Setup("collide", balls, variant="air")


def _pass(cfg: WorldConfig, rng: np.random.Generator) -> Setup:
    """A ball enters through one side and leaves through the other (no side walls)."""
    S, d = cfg.size, float(rng.choice([-1.0, 1.0]))
    (colour,), r = _colours(cfg, rng, 1), rng.uniform(*cfg.radius)
    x0 = rng.uniform(-r + 1, 0.0)
    x0 = x0 if d > 0 else S - x0
    y0 = rng.uniform(0.25 * S, 0.6 * S)
    vx = d * rng.uniform(1.1, 1.5) * (S + 2 * r) / (cfg.frames - 1)
    vy = -rng.uniform(0.0, 0.8) * _max_up_speed(cfg, y0, r)
    return Setup("pass", [Ball(colour, r, (x0, y0), (vx, vy))], side_walls=False)


_FAMILIES = {"throw": _throw, "drop": _drop, "roll": _roll, "collide": _collide, "pass": _pass}


def sample_setup(cfg: WorldConfig, rng: np.random.Generator, scenario: str | None = None) -> Setup:
    """Random initial conditions of ``scenario`` (drawn from ``cfg.scenarios``' weights when ``None``).

    Families: ``throw`` (one ball thrown sideways and upwards; bounces on walls and floor), ``drop``
    (1..max_balls balls released at rest), ``roll`` (one ball rolling on the floor, with friction μ
    drawn from ``cfg.friction``), ``collide`` (two balls aimed at each other, in the air or rolling on
    the floor), ``pass`` (one ball flies through the scene; no side walls, so it leaves the image).
    """
    if scenario is None:
        names = list(cfg.scenarios)
        w = np.array([cfg.scenarios[n] for n in names])
        scenario = names[int(rng.choice(len(names), p=w / w.sum()))]
    if scenario not in _FAMILIES:
        raise ValueError(f"unknown scenario {scenario!r}; the families are {list(SCENARIOS)}")
    return _FAMILIES[scenario](cfg, rng)


# ---------------------------------------------------------------------------------------------
# Integration
# ---------------------------------------------------------------------------------------------


def _first_crossing(p: float, v: float, a: float, target: float, sign: float, horizon: float) -> float | None:
    """Earliest ``t ∈ [0, horizon]`` with ``p + v t + ½ a t² = target`` while moving towards ``sign``
    (``sign·(v + a t) > 0``), or ``None``."""
    if sign * (p - target) >= -1e-9 and sign * v > 0:  # already there and moving in
        return 0.0
    if a == 0.0:
        roots = [(target - p) / v] if v != 0.0 else []
    else:
        disc = v * v + 2.0 * a * (target - p)
        if disc < 0.0:
            return None
        sq = math.sqrt(disc)
        roots = sorted(((-v - sq) / a, (-v + sq) / a))
    for t in roots:
        if 1e-12 < t <= horizon and sign * (v + a * t) > 0:
            return t
    return None


class _Integrator:
    """Integrates one :class:`Setup`; holds the mutable state. Use :func:`run`."""

    def __init__(self, cfg: WorldConfig, setup: Setup):
        self.cfg, self.setup = cfg, setup
        self.p = np.array([b.position for b in setup.balls], dtype=np.float64)  # (K, 2)
        self.v = np.array([b.velocity for b in setup.balls], dtype=np.float64)  # (K, 2)
        self.r = np.array([b.radius for b in setup.balls], dtype=np.float64)  # (K,)
        self.resting = np.array([b.resting for b in setup.balls], dtype=bool)  # (K,)
        self.events: list[ContactEvent] = []

    def advance(self, i: int, t0: float, dt: float, g: float) -> None:
        """Move ball ``i`` from time ``t0`` by ``dt`` frames, resolving floor/wall contacts exactly."""
        cfg, W, H = self.cfg, float(self.cfg.size), float(self.cfg.size)
        p, v, r = self.p[i], self.v[i], self.r[i]
        if self.resting[i] and g <= 0:
            self.resting[i] = False  # gravity no longer holds it down
        elapsed = 0.0
        for _ in range(16):  # a handful of contacts per substep at most
            rem = dt - elapsed
            if self.resting[i]:
                ax, ay = -math.copysign(self.setup.friction * g, v[0]) if v[0] != 0 else 0.0, 0.0
            else:
                ax, ay = 0.0, g
            # Candidate events: (time, kind)
            cands: list[tuple[float, str]] = []
            if not self.resting[i] and (t := _first_crossing(p[1], v[1], ay, H - r, +1, rem)) is not None:
                cands.append((t, "floor"))
            if self.setup.side_walls:
                if (t := _first_crossing(p[0], v[0], ax, r, -1, rem)) is not None:
                    cands.append((t, "left"))
                if (t := _first_crossing(p[0], v[0], ax, W - r, +1, rem)) is not None:
                    cands.append((t, "right"))
            if ax != 0.0 and (t := abs(v[0] / ax)) <= rem:
                cands.append((t, "stop"))
            t, kind = min(cands) if cands else (rem, "none")
            p += v * t + 0.5 * np.array([ax, ay]) * t * t
            v += np.array([ax, ay]) * t
            elapsed += t
            if kind == "none":
                return
            if kind == "stop":
                v[0] = 0.0
            elif kind == "floor":
                p[1], v[1] = H - r, -cfg.restitution * v[1]
                if abs(v[1]) < 0.25 * g:  # settle: the next hop would be < g/32 px high
                    v[1], self.resting[i] = 0.0, True
                self.events.append(ContactEvent(t0 + elapsed, "floor", (i,)))
            else:  # a side wall
                p[0], v[0] = (r if kind == "left" else W - r), -cfg.restitution * v[0]
                self.events.append(ContactEvent(t0 + elapsed, "wall", (i,)))

    def collide_balls(self, time: float, g: float) -> None:
        """Impulse for each overlapping, approaching pair: ``J = (1 + e_b) v_n / (1/m_i + 1/m_j)``."""
        K, e = len(self.r), self.cfg.ball_restitution
        for i in range(K):
            for j in range(i + 1, K):
                delta = self.p[j] - self.p[i]
                dist = float(np.hypot(*delta))
                overlap = self.r[i] + self.r[j] - dist
                if overlap <= 0 or dist == 0:
                    continue
                n = delta / dist  # unit normal from i to j
                mi, mj = self.r[i] ** 2, self.r[j] ** 2
                vn = float(np.dot(self.v[i] - self.v[j], n))  # > 0: approaching
                if vn > 0:
                    J = (1 + e) * vn / (1 / mi + 1 / mj)
                    self.v[i] -= J / mi * n
                    self.v[j] += J / mj * n
                    self.events.append(ContactEvent(time, "ball", (i, j)))
                # Remove the overlap, split by inverse mass (momentum-neutral).
                self.p[i] -= overlap * (1 / mi) / (1 / mi + 1 / mj) * n
                self.p[j] += overlap * (1 / mj) / (1 / mi + 1 / mj) * n
                for k in (i, j):
                    self._after_push(k, g)

    def _after_push(self, k: int, g: float) -> None:
        """Keep a pushed ball inside the walls and above the floor; update its resting state."""
        S, r = float(self.cfg.size), self.r[k]
        if self.setup.side_walls:
            self.p[k, 0] = min(max(self.p[k, 0], r), S - r)
        self.p[k, 1] = min(self.p[k, 1], S - r)
        if self.resting[k]:
            if self.v[k, 1] < 0:  # kicked upwards: it flies
                self.resting[k] = False
            elif self.v[k, 1] > 0:  # pushed into the floor: it bounces
                self.v[k, 1] *= -self.cfg.restitution
                self.resting[k] = abs(self.v[k, 1]) < 0.25 * g
                if self.resting[k]:
                    self.v[k, 1] = 0.0


def run(cfg: WorldConfig, setup: Setup, gravity: np.ndarray | float | None = None,
        seed: int | None = None) -> Trajectory:
    """Integrate ``setup`` for ``cfg.frames`` frames.

    Args:
        gravity: ``None`` → ``cfg.gravity``; a float; or a ``(T−1,)`` array giving ``g`` during each
            frame interval ``t → t+1`` (for counterfactual, non-physical clips such as flipped gravity).
        seed: recorded in the trajectory (the seed that produced ``setup``).
    """
    T, K = cfg.frames, len(setup.balls)
    g_t = np.broadcast_to(np.asarray(cfg.gravity if gravity is None else gravity, dtype=np.float64), (T - 1,))
    sim = _Integrator(cfg, setup)
    pos, vel = np.zeros((T, K, 2)), np.zeros((T, K, 2))
    resting = np.zeros((T, K), dtype=bool)
    pos[0], vel[0], resting[0] = sim.p, sim.v, sim.resting
    dt = 1.0 / cfg.substeps
    for t in range(T - 1):
        g = float(g_t[t])
        for s in range(cfg.substeps):
            for i in range(K):
                sim.advance(i, t + s * dt, dt, g)
            sim.collide_balls(t + (s + 1) * dt, g)
        pos[t + 1], vel[t + 1], resting[t + 1] = sim.p, sim.v, sim.resting

    # Per-frame contact flags: impact in (t-1, t] -> frame t.
    flags = {kind: np.zeros((T, K), dtype=bool) for kind in ("floor", "wall", "ball")}
    for ev in sim.events:
        frame = min(T - 1, max(0, math.ceil(ev.time - 1e-9)))
        flags[ev.kind][frame, list(ev.balls)] = True
    flags["floor"] |= resting
    S, r = cfg.size, sim.r[None, :]
    x, y = pos[..., 0], pos[..., 1]
    visible = (x + r > 0) & (x - r < S) & (y + r > 0) & (y - r < S)
    return Trajectory(
        scenario=setup.scenario, seed=seed, colours=tuple(b.colour for b in setup.balls), radius=sim.r.copy(),
        position=pos, velocity=vel, visible=visible, floor_contact=flags["floor"], wall_contact=flags["wall"],
        ball_contact=flags["ball"], events=sim.events, friction=setup.friction, side_walls=setup.side_walls,
        variant=setup.variant,
    )


def simulate(cfg: WorldConfig, seed: int, scenario: str | None = None) -> Trajectory:
    """Sample a scenario from ``np.random.default_rng(seed)`` and integrate it (deterministic)."""
    setup = sample_setup(cfg, np.random.default_rng(seed), scenario)
    return run(cfg, setup, seed=seed)
