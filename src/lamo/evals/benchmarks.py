"""VideoPhy, VideoPhy2 and VBench harnesses: generate, score with the benchmark's evaluator, aggregate.

**Prompt files** (the user supplies the benchmark's own; read by :mod:`lamo.data.tables`): CSV with a ``caption``
(VideoPhy, VideoPhy2), ``prompt`` or ``text`` column; JSON as VBench ships it (a list of objects with
``prompt_en``); JSONL with the same keys; or plain text, one prompt per line. Or a named suite
(:func:`suite_prompts`): ``vbench2-physics`` (VBench-2.0's Mechanics, Thermotics and Material prompts, shipped
with LaMo under Apache-2.0 — see ``lamo/assets/benchmarks/NOTICE.md``), ``vbench`` / ``vbench2`` (the full lists
of the installed ``vbench`` / ``vbench2`` packages), each optionally ``:Dim,Dim`` to keep some dimensions.

**The paper's protocol** (what the authors' evaluation scripts do, :func:`read_benchmark_rows`):

* VideoPhy — the video is generated from ``caption`` (the long, upsampled description); semantic adherence is
  judged against ``short_caption`` (the original VideoPhy prompt) when the file has it;
* VideoPhy2 — generated from ``upsampled_caption`` when the file has it; SA judged against ``caption``;
* the breakdowns: per ``states_of_matter`` and per ``complexity`` (VideoPhy's columns), per ``category`` and the
  hard subset (``is_hard``, VideoPhy-2's official table) when the file carries them.

``videos.csv`` (the judges' input) holds ``videopath``, ``caption`` — the text SA is judged against —,
``short_caption`` (the same), ``prompt`` (what was generated) and those columns, so the VideoPhy evaluation code
and the release's evaluators read it as they are.

**Evaluators.** The judges are large models with their own code, so LaMo does not re-implement them;
it writes ``videos.csv`` and either

* runs the user's evaluator installation: ``--evaluator-cmd "python …/eval.py --input {input} --output {output}"``
  (``{input}`` is ``videos.csv``, ``{output}`` the CSV/JSONL of per-video scores it must write), or
* reads per-video scores the user produced: ``--scores FILE`` — CSV/JSONL with ``videopath`` and ``sa`` / ``pc``
  (or ``sa_score`` / ``pc_score``, as the release's VideoPhy2 evaluator writes), or one row per video and task
  (``task_type`` SA / PC and ``score``, as the release's VideoPhy evaluator writes).

Without a judge every video is still scored with LaMo's weight-free motion metrics (:mod:`lamo.motion_metrics`),
per VBench dimension when the prompts come from a VBench suite.

**Aggregation** — thresholded, not averaged, as the benchmarks' own code does it (:func:`aggregate`):

* VideoPhy (VideoCon-Physics gives P(yes) in [0, 1]): a video counts when its score is ``≥ 0.5``;
  ``SA = 100·mean(sa ≥ 0.5)``, ``PC = 100·mean(pc ≥ 0.5)`` — the accuracies the release's
  ``entailment_eval_unified.py`` reports (its comment: "thresholding (>= 0.5) … accuracy instead of avg
  probability", as VideoREPA); ``joint = 100·mean(both)`` (VideoPhy's joint score) is added.
* VideoPhy2 (VideoPhy-2-AutoEval rates 1–5; the release's evaluator records 0 when it cannot read the judge's
  answer, and counts it): a video counts when rated ``≥ 4``; ``SA``, ``PC``, ``joint`` (both ``≥ 4``) in percent,
  and, as the release's summary also gives them, the mean ratings and the shares ``≥ 3`` and ``≥ 5``.
* Breakdowns: the same numbers within each value of each breakdown column (``by``) and on the hard subset.
* VBench: the per-dimension scores of VBench's ``evaluate`` and the total score as VBench's
  ``scripts/cal_final_score.py`` computes it (:func:`vbench_total`): each dimension min-max normalised
  (``scripts/constant.py``'s ``NORMALIZE_DIC``), dynamic degree weighted 0.5, quality = weighted mean of the 7
  quality dimensions, semantic = of the 9 semantic ones, total = (4·quality + 1·semantic) / 5; a dimension not
  evaluated counts 0, as there.
"""
from __future__ import annotations

import json
import math
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..data.tables import PROMPT_COLUMNS, read_prompts, read_rows
from ..errors import InputError, MissingInputError

__all__ = ["BENCHMARKS", "read_benchmark_prompts", "read_benchmark_rows", "BenchmarkPrompt", "GROUP_COLUMNS",
           "SUITES", "suite_prompts", "aggregate", "read_scores", "vbench_total", "VBENCH_DIMENSIONS",
           "EvaluatorMissing", "EvaluatorFailed", "run_evaluator"]

#: breakdown columns a prompt file may carry: VideoPhy's states of matter and complexity, VideoPhy-2's category
#: and hard subset
GROUP_COLUMNS = ("states_of_matter", "complexity", "category", "is_hard")
#: named prompt suites (:func:`suite_prompts`)
SUITES = ("vbench2-physics", "vbench", "vbench2")
#: VBench's 16 dimensions: (normalisation min, max, weight, "quality" | "semantic") — VBench's scripts/constant.py
VBENCH_DIMENSIONS: dict[str, tuple[float, float, float, str]] = {
    "subject consistency": (0.1462, 1.0, 1.0, "quality"),
    "background consistency": (0.2615, 1.0, 1.0, "quality"),
    "temporal flickering": (0.6293, 1.0, 1.0, "quality"),
    "motion smoothness": (0.706, 0.9975, 1.0, "quality"),
    "dynamic degree": (0.0, 1.0, 0.5, "quality"),
    "aesthetic quality": (0.0, 1.0, 1.0, "quality"),
    "imaging quality": (0.0, 1.0, 1.0, "quality"),
    "object class": (0.0, 1.0, 1.0, "semantic"),
    "multiple objects": (0.0, 1.0, 1.0, "semantic"),
    "human action": (0.0, 1.0, 1.0, "semantic"),
    "color": (0.0, 1.0, 1.0, "semantic"),
    "spatial relationship": (0.0, 1.0, 1.0, "semantic"),
    "scene": (0.0, 0.8222, 1.0, "semantic"),
    "appearance style": (0.0009, 0.2855, 1.0, "semantic"),
    "temporal style": (0.0, 0.364, 1.0, "semantic"),
    "overall consistency": (0.0, 0.364, 1.0, "semantic"),
}
VBENCH_QUALITY_WEIGHT, VBENCH_SEMANTIC_WEIGHT = 4.0, 1.0

#: name -> (score threshold, score range, evaluator the user must provide, the paper's figures SA/PC).
BENCHMARKS = {
    "videophy": dict(threshold=0.5, range=(0.0, 1.0),
                     evaluator="VideoCon-Physics (checkpoint 'videophysics/videocon_physics' on the Hugging Face Hub, "
                               "with the evaluation code of the VideoPhy repository, Bansal et al. 2024)",
                     paper={"CogVideoX-2B": (60.5, 25.6), "LaMo-2B": (67.2, 31.4), "VideoREPA-2B": (64.2, 29.7),
                            "CogVideoX-5B": (70.0, 32.3), "LaMo-5B": (73.0, 41.0), "VideoREPA-5B": (72.1, 40.1)}),
    "videophy2": dict(threshold=4.0, range=(0.0, 5.0),
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


@dataclass
class BenchmarkPrompt:
    """One prompt of a benchmark: ``prompt`` (what is generated), ``judge`` (the text semantic adherence is judged
    against), ``groups`` (its breakdown columns, :data:`GROUP_COLUMNS`) and, for VBench, its ``dimensions``."""

    prompt: str
    judge: str
    groups: dict[str, str] = field(default_factory=dict)
    dimensions: list[str] = field(default_factory=list)


def _text(values: dict, key: str) -> str:
    v = values.get(key)
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()


def suite_prompts(spec: str) -> list[BenchmarkPrompt] | None:
    """The prompts of a named suite, or ``None`` when ``spec`` names none (it is then a file).

    ``vbench2-physics`` — VBench-2.0's Mechanics, Thermotics and Material prompts (shipped with LaMo, Apache-2.0);
    ``vbench`` / ``vbench2`` — the full prompt lists of the installed ``vbench`` / ``vbench2`` packages
    (``VBench_full_info.json`` / ``VBench2_full_info.json``, Apache-2.0). ``SUITE:Dim,Dim`` keeps those dimensions.
    """
    name, _, dims = str(spec).partition(":")
    if name not in SUITES:
        return None
    if name == "vbench2-physics":
        from ..assets import ASSETS

        rows = json.loads((ASSETS / "benchmarks" / "vbench2_physics.json").read_text(encoding="utf-8"))
    else:
        import importlib.util

        package, file = {"vbench": ("vbench", "VBench_full_info.json"),
                         "vbench2": ("vbench2", "VBench2_full_info.json")}[name]
        found = importlib.util.find_spec(package)  # located, not imported (the packages import heavy dependencies)
        where = [Path(p) / file for p in (found.submodule_search_locations or [])] if found is not None else []
        where = [p for p in where if p.is_file()]
        if not where:
            raise MissingInputError(f"the prompt suite {name!r} is read from the {package} package, which is not "
                                    f"installed: pip install {package} (Apache-2.0; its wheel ships {file}), or pass "
                                    f"that JSON file itself" + (", or use the suite 'vbench2-physics' shipped with "
                                                                "LaMo" if name == "vbench2" else ""))
        rows = json.loads(where[0].read_text(encoding="utf-8"))
    wanted = {d.strip() for d in dims.split(",") if d.strip()}
    out = []
    for r in rows:
        dimensions = r.get("dimension") or []
        dimensions = [dimensions] if isinstance(dimensions, str) else list(dimensions)
        if wanted and not wanted & set(dimensions):
            continue
        out.append(BenchmarkPrompt(r["prompt_en"], r["prompt_en"], {}, dimensions))
    if not out:
        known = sorted({d for r in rows for d in ([r["dimension"]] if isinstance(r.get("dimension"), str)
                                                  else r.get("dimension") or [])})
        raise InputError(f"the suite {name!r} has no prompt of the dimension(s) {sorted(wanted)}; it has {known}")
    return out


def read_benchmark_rows(benchmark: str, path: str | Path) -> list[BenchmarkPrompt]:
    """The prompts of a benchmark prompt file (or suite, :func:`suite_prompts`) under the paper's protocol.

    VideoPhy: generated from ``caption``, SA judged against ``short_caption`` when present. VideoPhy2: generated
    from ``upsampled_caption`` when present, SA judged against ``caption``. Other files: one text for both. The
    breakdown columns (:data:`GROUP_COLUMNS`) are kept; VBench JSON's ``dimension`` goes to ``dimensions``.
    """
    suite = suite_prompts(str(path))
    if suite is not None:
        return suite
    rows = read_rows(path, what="prompt file", lines_are="prompt")
    out = []
    for row in rows:
        values = {str(k).lower(): v for k, v in row.values.items()}
        base = next((_text(values, c) for c in PROMPT_COLUMNS if _text(values, c)), "")
        if not base:
            continue
        prompt, judge = base, base
        if benchmark == "videophy" and _text(values, "short_caption"):
            judge = _text(values, "short_caption")
        if benchmark == "videophy2" and _text(values, "upsampled_caption"):
            prompt = _text(values, "upsampled_caption")
        groups = {c: _text(values, c) for c in GROUP_COLUMNS if _text(values, c)}
        dims = values.get("dimension") or []
        out.append(BenchmarkPrompt(prompt, judge, groups, [dims] if isinstance(dims, str) else list(dims)))
    if not out:
        read_prompts(path)  # the same one-line error as for any prompt file without prompts
    return out


def read_benchmark_prompts(path: str | Path) -> list[str]:
    """Prompts of a benchmark prompt file (CSV, VBench JSON, JSONL or text; :func:`lamo.data.tables.read_prompts`)."""
    suite = suite_prompts(str(path))
    return [p.prompt for p in suite] if suite is not None else read_prompts(path)


def _number(value, where: str, name: str) -> float:
    if value in (None, ""):
        return math.nan
    try:
        return float(value)
    except (ValueError, TypeError) as e:
        raise InputError(f"{where}: not a scores file of rows with videopath, sa and pc numbers ({name}: {e})") from e


def read_scores(path: str | Path) -> list[dict]:
    """Per-video scores from a CSV or JSONL: ``videopath`` (or ``video`` / ``video_url``) with ``sa`` / ``pc`` (or
    ``sa_score`` / ``pc_score``), or one row per video and task (``task_type`` SA / PC, ``score``); any case."""
    out: list[dict] = []
    long: dict[str, dict] = {}
    for row in read_rows(path, what="scores file"):
        r = {str(k).lower(): v for k, v in row.values.items()}
        video = r.get("videopath") or r.get("video") or r.get("video_url")
        if "task_type" in r and "score" in r:  # the release's VideoPhy evaluator: one row per (video, task)
            task = str(r["task_type"]).strip().lower()
            if task not in ("sa", "pc"):
                raise InputError(f"{row.where}: task_type must be SA or PC, got {r['task_type']!r}")
            entry = long.setdefault(str(video), {"videopath": video, "sa": math.nan, "pc": math.nan})
            entry[task] = _number(r["score"], row.where, "score")
            continue
        sa = r["sa"] if "sa" in r else r.get("sa_score")
        pc = r["pc"] if "pc" in r else r.get("pc_score")
        out.append({"videopath": video, "sa": _number(sa, row.where, "sa"), "pc": _number(pc, row.where, "pc")})
    return out + list(long.values())


def _summary(benchmark: str, rows: list[dict]) -> dict:
    """SA, PC, joint (percent) and n of scored rows; VideoPhy2 adds mean ratings and the shares ≥ 3 and ≥ 5."""
    thr = BENCHMARKS[benchmark]["threshold"]
    n = len(rows)
    sa = [r["sa"] >= thr for r in rows]
    pc = [r["pc"] >= thr for r in rows]
    out = {"SA": 100 * sum(sa) / n, "PC": 100 * sum(pc) / n, "joint": 100 * sum(a and b for a, b in zip(sa, pc)) / n,
           "n": n}
    if benchmark == "videophy2":
        for key in ("sa", "pc"):
            values = [r[key] for r in rows]
            out[f"{key.upper()}_mean"] = sum(values) / n
            for level in (3, 5):
                out[f"{key.upper()}_ge{level}"] = 100 * sum(v >= level for v in values) / n
    return out


def _truthy(value: str) -> bool:
    return str(value).strip().lower() in ("1", "1.0", "true", "yes", "y", "hard")


def aggregate(benchmark: str, scores: list[dict]) -> dict:
    """SA, PC and joint (percent) of per-video scores, as the benchmark defines them (thresholded; see the module).

    Rows may carry ``groups`` (breakdown column → value, :data:`GROUP_COLUMNS`): the result then holds the same
    numbers per value of each column (``by``) and, for ``is_hard``, on the hard subset (``hard``).
    """
    spec = BENCHMARKS[benchmark]
    lo, hi = spec["range"]
    rows = [r for r in scores if math.isfinite(r["sa"]) and math.isfinite(r["pc"])]
    if not rows:
        raise InputError(f"no video has both SA and PC scores ({len(scores)} rows)")
    bad = [r for r in rows if not (lo <= r["sa"] <= hi and lo <= r["pc"] <= hi)]
    if benchmark == "videophy2":  # whole-number ratings; 0 = the judge's answer could not be read (counted, failing)
        bad += [r for r in rows if r not in bad and (r["sa"] != int(r["sa"]) or r["pc"] != int(r["pc"]))]
    if bad:
        what = ("be whole-number ratings 1–5 (0: the judge's answer could not be read, counted as failing)"
                if benchmark == "videophy2" else f"lie in [{lo}, {hi}]")
        raise InputError(f"{benchmark} scores must {what}; e.g. {bad[0]}")
    out = {**_summary(benchmark, rows), "n_unscored": len(scores) - len(rows)}
    columns = [c for c in GROUP_COLUMNS if any(c in (r.get("groups") or {}) for r in rows)]
    by: dict[str, dict] = {}
    for c in columns:
        values = sorted({r["groups"][c] for r in rows if c in (r.get("groups") or {})}, key=str)
        by[c] = {v: _summary(benchmark, [r for r in rows if (r.get("groups") or {}).get(c) == v]) for v in values}
    if by:
        out["by"] = by
    hard = [r for r in rows if _truthy((r.get("groups") or {}).get("is_hard", ""))]
    if "is_hard" in columns and hard:
        out["hard"] = _summary(benchmark, hard)
    return out


def vbench_total(results: dict) -> dict:
    """VBench's quality, semantic and total scores (percent) from its per-dimension results, as its
    ``scripts/cal_final_score.py`` computes them.

    ``results`` maps a dimension (``dynamic_degree`` or ``dynamic degree``) to its score or to VBench's
    ``[score, per-video results]``. A dimension not given counts 0, as in VBench's script, and is listed in
    ``missing``.
    """
    scores, missing = {}, []
    given = {str(k).replace("_", " ").strip().lower(): v for k, v in results.items()}
    for dim in VBENCH_DIMENSIONS:
        value = given.get(dim)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is None:
            missing.append(dim)
            value = 0.0
        try:
            scores[dim] = float(value)
        except (TypeError, ValueError) as e:
            raise InputError(f"VBench result for {dim!r} is not a number: {value!r}") from e
    normalised = {d: (scores[d] - lo) / (hi - lo) * w for d, (lo, hi, w, _) in VBENCH_DIMENSIONS.items()}

    def part(kind: str) -> float:
        dims = [d for d, v in VBENCH_DIMENSIONS.items() if v[3] == kind]
        return sum(normalised[d] for d in dims) / sum(VBENCH_DIMENSIONS[d][2] for d in dims)

    quality, semantic = part("quality"), part("semantic")
    total = (quality * VBENCH_QUALITY_WEIGHT + semantic * VBENCH_SEMANTIC_WEIGHT) / (VBENCH_QUALITY_WEIGHT +
                                                                                    VBENCH_SEMANTIC_WEIGHT)
    return {"total": 100 * total, "quality": 100 * quality, "semantic": 100 * semantic, "dimensions": scores,
            "missing": missing}


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
