"""The embedded physics world (docs/design.md §3): a 2D ball simulator with exact ground truth, an
anti-aliased renderer, captions and datasets, a tracker that reads balls back out of any clip of the
world, and physics metrics over the tracks.

Units everywhere: pixels and frames of the rendered video (gravity in px/frame², y pointing down).

    cfg = get_world_config("tiny")                 # 32×32 px, 16 frames
    clip = make_clip(cfg, seed=0)                  # .trajectory (ground truth), .frames, .caption
    metrics = evaluate_clip(clip.frames, cfg)      # PhysicsMetrics: gravity_error, ballistic_residual, …
"""
from .dataset import Clip, caption, clip_seed, load_world_config, make_clip, read_metadata, write_dataset
from .metrics import (
    PHYSICS_METRICS, ClipError, ContactFrames, MetricConfig, PhysicsMetrics, aggregate, detect_contacts,
    evaluate_clip, frame_sharpness, physics_metrics,
)
from .perturb import flip_gravity, hide_ball, shuffle_frames, teleport, with_restitution
from .render import disc_coverage, render, render_frames
from .tracker import TrackerConfig, Tracks, track
from .world import (
    BACKGROUND, PALETTE, SCENARIOS, WORLD_PRESETS, Ball, ContactEvent, Setup, Trajectory, WorldConfig,
    get_world_config, run, sample_setup, simulate,
)

__all__ = [
    # world
    "PALETTE", "BACKGROUND", "SCENARIOS", "WorldConfig", "WORLD_PRESETS", "get_world_config",
    "Ball", "Setup", "ContactEvent", "Trajectory", "sample_setup", "run", "simulate",
    # rendering, captions, datasets
    "disc_coverage", "render_frames", "render",
    "Clip", "caption", "make_clip", "clip_seed", "write_dataset", "read_metadata", "load_world_config",
    # tracking and metrics
    "TrackerConfig", "Tracks", "track",
    "ClipError", "MetricConfig", "ContactFrames", "PhysicsMetrics", "PHYSICS_METRICS", "detect_contacts",
    "physics_metrics", "frame_sharpness", "evaluate_clip", "aggregate",
    # counterfactual clips
    "shuffle_frames", "flip_gravity", "hide_ball", "teleport", "with_restitution",
]
