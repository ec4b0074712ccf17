"""VideoPhy, VideoPhy2 and VBench harnesses: generate, score with the benchmark's evaluator, aggregate.

**Prompt files** (the user supplies the benchmark's own; read by :mod:`lamo.data.tables`): CSV with a ``caption``
(VideoPhy, VideoPhy2), ``prompt`` or ``text`` column; JSON as VBench ships it (a list of objects with
``prompt_en``); JSONL with the same keys; or plain text, one prompt per line.

**Evaluators.** The judges are large models with their own code, so LaMo does not re-implement them;
it writes their input file (``videos.csv``: ``videopath,caption``) and either

* runs the user's evaluator installation: ``--evaluator-cmd "python …/eval.py --input {input} --output {output}"``
  (``{input}`` is ``videos.csv``, ``{output}`` the CSV/JSONL of per-video scores it must write), or
* reads per-video scores the user produced: ``--scores FILE`` (CSV/JSONL with ``videopath`` and
  ``sa`` / ``pc`` columns).

**Aggregation**, exactly as each benchmark defines it:

* VideoPhy (SA and PC judged by VideoCon-Physics in [0, 1]): a video counts when its score is
  ``≥ 0.5``; ``SA = 100·mean(sa ≥ 0.5)``, ``PC = 100·mean(pc ≥ 0.5)``, ``joint = 100·mean(both)``.
* VideoPhy2 (1–5 ratings by VideoPhy-2-AutoEval): a video counts when rated ``≥ 4``.
* VBench: per-dimension scores from VBench itself, averaged as given; LaMo adds its weight-free motion
  metrics (:mod:`lamo.motion_metrics`) in any case.
"""
from __future__ import annotations

import math
import shlex
import subprocess
from pathlib import Path

from ..data.tables import read_prompts, read_rows
from ..errors import InputError

__all__ = ["BENCHMARKS", "read_benchmark_prompts", "aggregate", "read_scores", "EvaluatorMissing", "EvaluatorFailed",
           "run_evaluator"]

#: name -> (score threshold, score range, evaluator the user must provide, the paper's figures SA/PC).
BENCHMARKS = {
    "videophy": dict(threshold=0.5, range=(0.0, 1.0),
                     evaluator="VideoCon-Physics (checkpoint 'videophysics/videocon_physics' on the Hugging Face Hub, "
                               "with the evaluation code of the VideoPhy repository, Bansal et al. 2024)",
                     paper={"CogVideoX-2B": (60.5, 25.6), "LaMo-2B": (67.2, 31.4), "VideoREPA-2B": (64.2, 29.7),
                            "CogVideoX-5B": (70.0, 32.3), "LaMo-5B": (73.0, 41.0), "VideoREPA-5B": (72.1, 40.1)}),
    "videophy2": dict(threshold=4.0, range=(1.0, 5.0),
                      evaluator="VideoPhy-2-AutoEval (checkpoint 'videophysics/videophy_2_auto' on the Hugging Face "
                                "Hub, with the VideoPhy-2 evaluation code)",
                      paper={"CogVideoX-2B": (21.0, 68.0), "LaMo-2B": (25.4, 75.4)}),
    "vbench": dict(threshold=None, range=None,
                   evaluator="VBench (pip package 'vbench' with its model weights), run on the generated videos",
                   paper={"CogVideoX-5B (total)": (78.2, None), "LaMo-5B (total)": (79.6, None)}),
}


class EvaluatorMissing(RuntimeError):
    """The benchmark's evaluator was not given; the message says what is needed and where it comes from."""


class EvaluatorFailed(RuntimeError):
    """The evaluator command exited non-zero or wrote no scores: its exit status and the end of its stderr."""

    def __init__(self, message: str, returncode: int | None, stderr_tail: str, command: list[str]):
        super().__init__(message)
        self.returncode, self.stderr_tail, self.command = returncode, stderr_tail, command

    def to_dict(self) -> dict:
        return {"error": str(self).splitlines()[0], "exit_status": self.returncode, "command": self.command,
                "stderr_tail": self.stderr_tail}


def read_benchmark_prompts(path: str | Path) -> list[str]:
    """Prompts of a benchmark prompt file (CSV, VBench JSON, JSONL or text; :func:`lamo.data.tables.read_prompts`)."""
    return read_prompts(path)


def read_scores(path: str | Path) -> list[dict]:
    """Per-video scores from a CSV or JSONL with ``videopath`` (or ``video``) and ``sa`` / ``pc`` (any case)."""
    out = []
    for row in read_rows(path, what="scores file"):
        r = {str(k).lower(): v for k, v in row.values.items()}
        try:
            out.append({"videopath": r.get("videopath") or r.get("video"),
                        "sa": float(r["sa"]) if r.get("sa") not in (None, "") else math.nan,
                        "pc": float(r["pc"]) if r.get("pc") not in (None, "") else math.nan})
        except (ValueError, TypeError) as e:
            raise InputError(f"{row.where}: not a scores file of rows with videopath, sa and pc numbers ({e})") from e
    return out


def aggregate(benchmark: str, scores: list[dict]) -> dict:
    """SA, PC and joint (percent) of per-video scores, as the benchmark defines them."""
    spec = BENCHMARKS[benchmark]
    thr, (lo, hi) = spec["threshold"], spec["range"]
    rows = [r for r in scores if math.isfinite(r["sa"]) and math.isfinite(r["pc"])]
    if not rows:
        raise InputError(f"no video has both SA and PC scores ({len(scores)} rows)")
    bad = [r for r in rows if not (lo <= r["sa"] <= hi and lo <= r["pc"] <= hi)]
    if bad:
        raise InputError(f"{benchmark} scores must lie in [{lo}, {hi}]; e.g. {bad[0]}")
    sa = [r["sa"] >= thr for r in rows]
    pc = [r["pc"] >= thr for r in rows]
    n = len(rows)
    return {"SA": 100 * sum(sa) / n, "PC": 100 * sum(pc) / n,
            "joint": 100 * sum(a and b for a, b in zip(sa, pc)) / n, "n": n, "n_unscored": len(scores) - n}


def run_evaluator(benchmark: str, command: str | None, videos_csv: Path, output: Path) -> Path:
    """Run the user's evaluator command (``{input}``, ``{output}`` substituted); return its output file."""
    if not command:
        raise EvaluatorMissing(
            f"no {benchmark} evaluator given. It needs {BENCHMARKS[benchmark]['evaluator']}. Run it on "
            f"{videos_csv} and pass --scores FILE, or give --evaluator-cmd \"… {{input}} … {{output}}\"."
        )
    argv = [a.replace("{input}", str(videos_csv)).replace("{output}", str(output)) for a in shlex.split(command)]
    output.unlink(missing_ok=True)  # a scores file left by an earlier run must not pass for this one's
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
    except OSError as e:  # the program does not exist or cannot be run
        raise EvaluatorFailed(f"the evaluator command could not start: {e}", None, "", argv) from e
    tail = done.stderr[-2000:]
    if done.returncode != 0:
        raise EvaluatorFailed(f"the evaluator command failed (exit status {done.returncode})", done.returncode, tail,
                              argv)
    if not output.is_file():
        raise EvaluatorFailed(f"the evaluator command exited 0 but wrote no scores file {output}", 0, tail, argv)
    return output
