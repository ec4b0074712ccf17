"""The one reader of prompt and video tables: prompt files, video-caption indexes, score files, ``metadata.jsonl``.

A file's suffix says how it is read:

* ``.csv`` — a header row, then one row per line (quoted fields may hold commas and line breaks);
* ``.jsonl`` — one JSON object per line;
* ``.json`` — a JSON list of objects (VBench's ``VBench_full_info.json``), one object, or JSON lines;
* anything else — CSV, or for prompt files (``lines_are="prompt"``) text: each line is a prompt, except a line
  that starts with ``{``, which is a JSON object like a JSONL line.

Blank lines are skipped everywhere. A value is taken from the first of the accepted columns a row has
(:data:`PROMPT_COLUMNS`, :data:`CAPTION_COLUMNS`, :data:`VIDEO_COLUMNS`). Mistakes are :mod:`lamo.errors` types that
name the file and line: :class:`~lamo.errors.MissingInputError` for a file that is not there,
:class:`~lamo.errors.InputError` for a line that cannot be read, a row without any accepted column, and a table
without rows.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, MissingInputError

__all__ = ["Row", "read_rows", "column", "read_prompts", "read_video_table",
           "PROMPT_COLUMNS", "CAPTION_COLUMNS", "VIDEO_COLUMNS"]

#: where a prompt file's prompt is (VideoPhy's CSVs: caption; VBench's JSON: prompt_en)
PROMPT_COLUMNS = ("caption", "prompt", "text", "prompt_en")
#: where a video table's caption is (the fine-tuning tools' conventions)
CAPTION_COLUMNS = ("caption", "text", "prompt")
#: where a video table's video file is
VIDEO_COLUMNS = ("video", "file_name", "path", "videopath")


@dataclass(frozen=True)
class Row:
    """One row of a table: its values and where it is (``file:line``, or ``file[item]`` in a JSON list)."""

    where: str
    values: dict[str, Any]


def _json_object(text: str, where: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e})") from e
    if not isinstance(value, dict):
        raise InputError(f"{where}: a row must be a JSON object {{\"column\": value, …}}, got {type(value).__name__}")
    return value


def _json_lines(path: Path, text: str) -> list[Row]:
    return [Row(f"{path}:{n}", _json_object(line, f"{path}:{n}"))
            for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_rows(path: str | os.PathLike, *, what: str = "table", lines_are: str | None = None,
              allow_empty: bool = False) -> list[Row]:
    """The rows of a table file (see the module docstring); ``what`` names the file in messages.

    ``lines_are``: the column each line of a text file (a suffix other than .csv / .json / .jsonl) fills; without
    it such a file is read as CSV. An empty table is an error unless ``allow_empty``.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{what} {path} not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} {path} is not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from e
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = _json_lines(path, text)
    elif suffix == ".json":
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None  # JSON lines
        if isinstance(whole, list):
            rows = [Row(f"{path}[{i}]", item) for i, item in enumerate(whole)]
            bad = next((r for r in rows if not isinstance(r.values, dict)), None)
            if bad is not None:
                raise InputError(f"{bad.where}: a row must be a JSON object {{\"column\": value, …}}, "
                                 f"got {type(bad.values).__name__}")
        else:
            rows = _json_lines(path, text)
    elif suffix != ".csv" and lines_are:
        rows = [Row(f"{path}:{n}", _json_object(line, f"{path}:{n}") if line.startswith("{") else {lines_are: line})
                for n, line in ((n, raw.strip()) for n, raw in enumerate(text.splitlines(), 1)) if line]
    else:
        with io.StringIO(text, newline="") as f:
            reader = csv.DictReader(f)
            try:
                rows = [Row(f"{path}:{reader.line_num}", {k: v for k, v in r.items() if k is not None})
                        for r in reader if any((v or "").strip() for v in r.values() if isinstance(v, str))]
            except csv.Error as e:
                raise InputError(f"{path}:{reader.line_num}: not a CSV line ({e})") from e
    if not rows and not allow_empty:
        raise InputError(f"{what} {path} holds no rows")
    return rows


def column(row: Row, columns: tuple[str, ...], required: bool = True) -> str:
    """The row's value in the first of ``columns`` it has a value in (as text).

    A row with none of the columns is an error; one whose columns are all empty gives ``""``, or with
    ``required`` is an error too.
    """
    for name in columns:
        value = row.values.get(name)
        if value not in (None, ""):
            return str(value)
    if required or not any(name in row.values for name in columns):
        has = ", ".join(map(str, row.values)) or "nothing"
        raise InputError(f"{row.where}: needs a {columns[0]!r} or {columns[1]!r} column (accepted: "
                         f"{' / '.join(columns)}){' with a value' if any(c in row.values for c in columns) else ''}; "
                         f"it has {has}")
    return ""


def read_prompts(path: str | os.PathLike) -> list[str]:
    """The prompts of a prompt file: text (one per line), CSV, JSON or JSONL with a :data:`PROMPT_COLUMNS` column.

    Rows whose prompt is empty are skipped; a file that gives no prompt is an error.
    """
    prompts = [p for p in (column(r, PROMPT_COLUMNS, required=False)
                           for r in read_rows(path, what="prompt file", lines_are="prompt")) if p]
    if not prompts:
        raise InputError(f"prompt file {path} holds no prompts")
    return prompts


def read_video_table(source: str | os.PathLike) -> list[tuple[Path, str]]:
    """``(video path, caption)`` pairs of a video-caption dataset; paths are relative to the table's folder.

    ``source`` is a CSV / JSON / JSONL table with a :data:`VIDEO_COLUMNS` and a :data:`CAPTION_COLUMNS` column, or a
    folder holding line-aligned ``videos.txt`` + ``prompts.txt`` (the finetrainers convention), ``metadata.jsonl``
    or ``metadata.csv``.
    """
    source = Path(source)
    if source.is_dir():
        if (source / "prompts.txt").is_file() and (source / "videos.txt").is_file():
            prompts = (source / "prompts.txt").read_text().splitlines()
            videos = (source / "videos.txt").read_text().splitlines()
            if len(prompts) != len(videos):
                raise InputError(f"{source}: prompts.txt has {len(prompts)} lines but videos.txt has {len(videos)}; "
                                 "they must be line-aligned")
            pairs = [(source / v.strip(), p.strip()) for v, p in zip(videos, prompts) if v.strip()]
            if not pairs:
                raise InputError(f"{source}: videos.txt lists no videos")
            return pairs
        for name in ("metadata.jsonl", "metadata.csv"):
            if (source / name).is_file():
                return read_video_table(source / name)
        raise MissingInputError(f"{source}: no prompts.txt + videos.txt, metadata.jsonl or metadata.csv")
    if source.is_file() and source.suffix.lower() not in (".csv", ".jsonl", ".json"):
        raise InputError(f"{source}: use a .csv or .jsonl index (or a folder with prompts.txt and videos.txt)")
    return [(source.parent / column(r, VIDEO_COLUMNS), column(r, CAPTION_COLUMNS))
            for r in read_rows(source, what="dataset index")]
