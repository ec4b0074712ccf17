"""The one reader of prompt and video tables (lamo.data.tables) and the four places that read through it."""
from __future__ import annotations

import json

import pytest

from lamo.commands.sample import read_prompts_file
from lamo.data import read_index
from lamo.data.tables import read_prompts, read_rows, read_video_table
from lamo.errors import InputError, MissingInputError
from lamo.evals.benchmarks import read_benchmark_prompts, read_scores
from lamo.physics import read_metadata

PROMPTS = ["a ball falls", "Water, poured\ninto a glass", "two balls collide"]


def prompt_files(tmp_path):
    """The same three prompts in every format a prompt file may have."""
    files = {
        "p.txt": "a ball falls\n\n{\"prompt\": \"Water, poured\\ninto a glass\"}\ntwo balls collide\n",
        "p.csv": 'caption,source\na ball falls,x\n"Water, poured\ninto a glass",y\n,z\ntwo balls collide,w\n',
        "p.json": json.dumps([{"prompt_en": p, "dimension": ["motion"]} for p in PROMPTS]),
        "p.jsonl": "".join(json.dumps({k: p}) + "\n\n" for k, p in zip(("prompt", "caption", "text"), PROMPTS)),
        "lines.json": "\n".join(json.dumps({"prompt": p}) for p in PROMPTS),  # .json holding JSON lines
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return [tmp_path / name for name in files]


def test_every_prompt_format_gives_the_same_prompts_to_sample_and_eval(tmp_path):
    for path in prompt_files(tmp_path):
        assert read_prompts(path) == read_prompts_file(path) == read_benchmark_prompts(path) == PROMPTS, path.name


def test_the_first_accepted_column_with_a_value_wins(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"caption": "", "prompt": "b", "text": "c"}\n{"text": "d", "prompt_en": "e"}\n')
    assert read_prompts(tmp_path / "p.jsonl") == ["b", "d"]


@pytest.mark.parametrize("name, text, error, message", [
    ("p.jsonl", '{"prompt": "a"}\n{"prompt": "b"\n', InputError, r"p.jsonl:2: not valid JSON"),
    ("p.jsonl", '{"prompt": "a"}\n["b"]\n', InputError, r"p.jsonl:2: a row must be a JSON object"),
    ("p.json", '[{"prompt_en": "a"}, "b"]', InputError, r"p.json\[1\]: a row must be a JSON object"),
    ("p.txt", 'a\n{"prompt": \n', InputError, r"p.txt:2: not valid JSON"),
    ("p.jsonl", '{"prompt": "a"}\n{"seed": 1}\n', InputError,
     r"p.jsonl:2: needs a 'caption' or 'prompt' column \(accepted: caption / prompt / text / prompt_en\); it has seed"),
    ("p.csv", "video,score\nx,1\n", InputError, r"p.csv:2: needs a 'caption' or 'prompt' column"),
    ("p.csv", "caption\n", InputError, r"p.csv holds no rows"),
    ("p.csv", "caption,source\n,x\n", InputError, r"holds no prompts"),
    ("p.txt", "\n  \n", InputError, r"holds no rows"),
    ("p.json", "[]", InputError, r"holds no rows"),
])
def test_a_bad_prompt_file_is_refused_naming_the_line(tmp_path, name, text, error, message):
    (tmp_path / name).write_text(text)
    for read in (read_prompts, read_prompts_file, read_benchmark_prompts):
        with pytest.raises(error, match=message):
            read(tmp_path / name)


def test_a_missing_file_is_a_missing_input():
    for read in (read_prompts, read_video_table, read_scores, read_metadata):
        with pytest.raises(MissingInputError, match="not found"):
            read("/nonexistent/file.csv" if read is not read_metadata else "/nonexistent")


def test_video_tables(tmp_path):
    (tmp_path / "videos.txt").write_text("v/a.mp4\n\n")
    (tmp_path / "prompts.txt").write_text("a ball\n\n")
    assert read_video_table(tmp_path) == read_index(tmp_path) == [(tmp_path / "v/a.mp4", "a ball")]
    sub = tmp_path / "ds"
    sub.mkdir()
    (sub / "metadata.jsonl").write_text(json.dumps({"video": "videos/0.mp4", "caption": "c", "seed": 3}) + "\n")
    assert read_video_table(sub) == [(sub / "videos/0.mp4", "c")]
    assert read_metadata(sub) == [{"video": "videos/0.mp4", "caption": "c", "seed": 3}]
    (tmp_path / "t.csv").write_text("videopath,prompt\nx.mp4,p\n")
    assert read_video_table(tmp_path / "t.csv") == [(tmp_path / "x.mp4", "p")]
    (tmp_path / "t.json").write_text(json.dumps([{"file_name": "y.mp4", "text": "t"}]))
    assert read_video_table(tmp_path / "t.json") == [(tmp_path / "y.mp4", "t")]
    (tmp_path / "empty.csv").write_text("video,caption\nz.mp4,\n")  # a video without its caption
    with pytest.raises(InputError, match=r"empty.csv:2: needs a 'caption' or 'text' column .* with a value"):
        read_video_table(tmp_path / "empty.csv")
    (tmp_path / "t.txt").write_text("x.mp4\n")
    with pytest.raises(InputError, match="use a .csv or .jsonl index"):
        read_video_table(tmp_path / "t.txt")


def test_metadata_and_scores_read_through_the_same_rows(tmp_path):
    (tmp_path / "metadata.jsonl").write_text('{"video": "a.mp4"}\nnot json\n')
    with pytest.raises(InputError, match=r"metadata.jsonl:2: not valid JSON"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.jsonl").write_text("\n")
    with pytest.raises(InputError, match="holds no rows"):
        read_metadata(tmp_path)
    (tmp_path / "s.csv").write_text("VideoPath,SA,PC\na.mp4,0.5,\n\"b,1.mp4\",0.25,1\n")
    rows = read_scores(tmp_path / "s.csv")
    assert rows[1] == {"videopath": "b,1.mp4", "sa": 0.25, "pc": 1.0} and rows[0]["pc"] != rows[0]["pc"]  # NaN
    (tmp_path / "s.jsonl").write_text('{"video": "a.mp4", "sa": 0.5, "pc": "high"}\n')
    with pytest.raises(InputError, match=r"s.jsonl:1: not a scores file"):
        read_scores(tmp_path / "s.jsonl")
    assert [r.where for r in read_rows(tmp_path / "s.csv")] == [f"{tmp_path / 's.csv'}:2", f"{tmp_path / 's.csv'}:3"]
