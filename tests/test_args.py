"""The one typed CLI layer (lamo.commands._args): options made from dataclasses, one yes/no parser, --config YAML,
and help for every option of every command."""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field, fields

import pytest

from lamo.cli import build_parser
from lamo.commands._args import YES_NO, add_config_command, config_from_args, read_config_file, yes_no
from lamo.errors import InputError, MissingInputError


def all_parsers(parser: argparse.ArgumentParser, path=("lamo",)):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_parsers(sub, (*path, name))


def test_every_option_of_every_command_has_help():
    parsers = dict(all_parsers(build_parser()))
    assert {"lamo sample", "lamo cache", "lamo train prior", "lamo train finetune", "lamo demo train-backbone",
            "lamo eval videophy"} <= set(parsers)
    for path, parser in parsers.items():
        parser.format_help()  # a help text argparse cannot format (e.g. a stray %) fails here
        for action in parser._actions:
            if action.dest != "help" and not isinstance(action, argparse._SubParsersAction):
                assert action.help and action.help.strip(), f"{path} {action.option_strings or action.dest}"


def test_one_yes_no_parser_for_every_yes_no_option():
    assert [yes_no(v) for v in ("yes", "YES", "true", "1", "y", "no", "False", "0", "n")] == [True] * 5 + [False] * 4
    with pytest.raises(argparse.ArgumentTypeError, match="maybe"):
        yes_no("maybe")
    seen = []
    for path, parser in all_parsers(build_parser()):
        for action in parser._actions:
            if action.metavar == YES_NO:
                assert action.type is yes_no, f"{path} {action.option_strings}"
                seen.append(f"{path} {action.option_strings[0]}")
    assert {"lamo demo --ablations", "lamo demo train-backbone --train-text-encoder", "lamo cache --prompt-embeds",
            "lamo train finetune --gradient-checkpointing"} <= set(seen)


def test_train_backbone_options_follow_its_dataclass():
    from lamo.demo.train_backbone import BackboneTrainConfig

    parser = dict(all_parsers(build_parser()))["lamo demo train-backbone"]
    assert {f.name for f in fields(BackboneTrainConfig)} <= {a.dest for a in parser._actions}
    args = build_parser().parse_args(["demo", "train-backbone", "--data", "d", "--steps", "7",
                                      "--train-text-encoder", "no"])
    cfg = config_from_args(BackboneTrainConfig, args)
    assert cfg == BackboneTrainConfig(data="d", steps=7, train_text_encoder=False)
    with pytest.raises(SystemExit):  # --data is required
        build_parser().parse_args(["demo", "train-backbone"])


@dataclass
class Toy:
    name: str  # the thing's name
    steps: int = 3  # how many steps
    rate: float = 0.5
    every: int | None = None
    fast: bool = True
    tag: str = field(default="", metadata={"help": "a label from metadata"})


def toy_parser(**kwargs) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="t")
    add_config_command(top.add_subparsers(dest="cmd"), "toy", Toy, helps={"rate": "step size"}, **kwargs)
    return top


def test_options_are_typed_documented_and_spelled_with_dashes():
    p = toy_parser()
    args = p.parse_args(["toy", "--name", "x", "--steps", "4", "--rate", "1", "--every", "2", "--fast", "no"])
    assert config_from_args(Toy, args) == Toy(name="x", steps=4, rate=1.0, every=2, fast=False)
    assert config_from_args(Toy, p.parse_args(["toy", "--name", "x", "--no-fast"])).fast is False
    assert config_from_args(Toy, p.parse_args(["toy", "--name", "x"])) == Toy(name="x")
    for bad in (["--steps", "3"], ["--name", "x", "--steps", "three"], ["--name", "x", "--fast", "maybe"],
                ["--name", "x", "--every_now", "1"], ["--name", "x", "--every_", "1"]):
        with pytest.raises(SystemExit):
            p.parse_args(["toy", *bad])
    toy = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices["toy"]
    helps = {a.option_strings[0]: a.help for a in toy._actions if a.option_strings}
    assert helps["--name"] == "the thing's name (required)"
    assert helps["--steps"] == "how many steps (default: 3)" and helps["--rate"] == "step size (default: 0.5)"
    assert helps["--fast"] == "(default: yes)" and helps["--tag"] == "a label from metadata"
    assert helps["--every"] == "every (no default)" and helps["--no-fast"] == "same as --fast no"
    assert "--every_now" not in helps and not any("_" in o for o in helps)


def test_config_file_layers_defaults_yaml_and_command_line(tmp_path):
    p = toy_parser(config_file=True)
    (tmp_path / "c.yaml").write_text("name: from-yaml\nsteps: 9\nrate: 2\nfast: no\n")
    args = p.parse_args(["toy", "--config", str(tmp_path / "c.yaml"), "--steps", "3"])
    # the command line wins even where it repeats the default (3); YAML fills the rest; 2 becomes 2.0
    cfg = config_from_args(Toy, args)
    assert cfg == Toy(name="from-yaml", steps=3, rate=2.0, fast=False) and isinstance(cfg.rate, float)
    assert config_from_args(Toy, p.parse_args(["toy", "--name", "n"])) == Toy(name="n")
    with pytest.raises(InputError, match="--name required"):  # neither the command line nor a YAML file names it
        config_from_args(Toy, p.parse_args(["toy", "--steps", "1"]))
    for text, message in [("steps: 2.5\n", "steps must be an integer"), ("rate: fast\n", "rate must be a number"),
                          ("fast: 3\n", "fast must be yes/no"), ("name: 3\n", "name must be a string"),
                          ("every: null\nstepz: 1\n", "unknown keys ['stepz']"), ("- 1\n", "must hold a mapping"),
                          ("steps: [1\n", "not valid YAML")]:
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
            read_config_file(tmp_path / "bad.yaml", Toy)
    with pytest.raises(MissingInputError, match="no such file"):
        read_config_file(tmp_path / "none.yaml", Toy)
    assert read_config_file(tmp_path / "c.yaml", Toy)["rate"] == 2.0


def test_no_help_page_shows_docstring_markup():
    """--help is read by people: no reST roles or double backquotes from a module's docstring."""
    markup = re.compile(r"``|:(?:mod|func|class|data|meth|attr):`")
    for path, parser in all_parsers(build_parser()):
        shown = [line for line in parser.format_help().splitlines() if markup.search(line)]
        assert not shown, f"{path} --help shows markup: {shown}"
