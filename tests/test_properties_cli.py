"""Every numeric option of every command declares its valid range, and refuses generated values outside it with a
one-line usage error naming the option (exit 2), no traceback (issue 32).

The options are found by walking the command tree (tests/test_args.all_parsers), so an option added later is covered
without a change here — and one added with a plain ``type=int`` / ``type=float`` (no declared range) fails
:func:`test_every_numeric_option_declares_its_range`. Bad values are derived from each option's declaration
(:class:`lamo.commands._args.Number`): below its low end, above its high end, a fraction for a whole number, NaN,
±inf, overflowing numbers and text that is no number at all. Everything here is parse-level: no model is loaded.
"""
from __future__ import annotations

import argparse
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_args import all_parsers

from lamo.cli import build_parser, main
from lamo.commands._args import FLOAT_MAX, Number, config_from_args
from lamo.errors import InputError


def _is_numeric(action: argparse.Action) -> bool:
    """An option that takes a number: typed int/float/Number, or untyped with a numeric (non-bool) default."""
    if not action.option_strings or action.nargs == 0:
        return False
    if action.type in (int, float) or isinstance(action.type, Number):
        return True
    default = action.default[0] if isinstance(action.default, (list, tuple)) and action.default else action.default
    return action.type is None and isinstance(default, (int, float)) and not isinstance(default, bool)


def _numeric_options() -> list[tuple[str, argparse.Action]]:
    return [(path, a) for path, parser in all_parsers(build_parser()) for a in parser._actions if _is_numeric(a)]


OPTIONS = _numeric_options()
IDS = [f"{path} {a.option_strings[-1]}" for path, a in OPTIONS]


def test_the_walk_finds_the_numeric_options_of_every_kind_of_command():
    found = set(IDS)
    assert {"lamo sample --seeds", "lamo sample --fps", "lamo sample --activation-gib", "lamo train prior --seed",
            "lamo train finetune --lora-rank", "lamo cache --frames", "lamo data physics --seed",
            "lamo data physics --num-clips", "lamo demo --sweep", "lamo demo --threads",
            "lamo demo train-backbone --ema-decay", "lamo eval prior --threads", "lamo eval vbench --steps",
            "lamo settings --steps", "lamo explain --fps", "lamo bench effect --windows"} <= found
    assert len(OPTIONS) >= 100


@pytest.mark.parametrize("path, action", OPTIONS, ids=IDS)
def test_every_numeric_option_declares_its_range(path, action):
    assert isinstance(action.type, Number), (
        f"{path} {action.option_strings}: a numeric option needs type=Number(...) (lamo.commands._args: COUNT, "
        f"SEED, LR, …) declaring its valid range, not {action.type!r}")
    defaults = action.default if isinstance(action.default, (list, tuple)) else [action.default]
    for value in defaults:  # the default lies in the declared range
        if value is not None:
            assert action.type.contains(value), f"{path} {action.option_strings}: default {value!r}"
            assert action.type(str(value)) == value


def _outside(number: Number) -> st.SearchStrategy[str]:
    """Text of values the declaration refuses."""
    words = st.sampled_from(["", " ", "abc", "one", "1,5", "0x10", "½", "1..2", "--", "nan", "NaN", "-nan", "inf",
                             "+inf", "-inf", "Infinity", "1e300", "-1e300", "1e999", str(10**30), str(-10**30)])
    low, high = number.low, number.high

    def refused(text: str) -> bool:  # by the declaration alone: not a number of its kind, or outside [low, high]
        try:
            value = int(text) if number.kind is int else float(text)
        except ValueError:
            return True
        return not (math.isfinite(value)
                    and (low is None or (value > low if number.low_open else value >= low))
                    and (value < high if number.high_open else value <= high))

    parts = [words.filter(refused)]
    if number.kind is int:
        parts.append(st.integers(max_value=-1).map(lambda k: f"{k}.5"))  # a fraction is no whole number
        parts.append(st.integers(min_value=1, max_value=10**6).map(lambda k: f"{k}.5"))
        if low is not None:
            parts.append(st.integers(max_value=math.ceil(low) - (0 if number.low_open else 1)).map(str))
        parts.append(st.integers(min_value=int(high) + (0 if number.high_open else 1)).map(str))
    else:
        if low is not None:
            below = st.floats(max_value=low, exclude_max=not number.low_open, allow_nan=False, allow_infinity=True)
            parts.append(below.map(repr))
        above = st.floats(min_value=high, exclude_min=not number.high_open, allow_nan=False, allow_infinity=True)
        parts.append(above.map(repr))
    return st.one_of(parts)


def _inside(number: Number) -> st.SearchStrategy[str]:
    low = number.low if number.low is not None else -1e6
    if number.kind is int:
        lo = int(low) + (1 if number.low_open else 0)
        return st.integers(min_value=lo, max_value=int(number.high) - (1 if number.high_open else 0)).map(str)
    return st.floats(min_value=low, max_value=number.high, exclude_min=number.low_open,
                     exclude_max=number.high_open, allow_nan=False).map(repr)


def _argv(path: str, option: str, value: str) -> list[str]:
    return [*path.split()[1:], f"{option}={value}"]


@pytest.fixture
def parse_only(monkeypatch):
    """``main`` parses but never runs a command: a value wrongly accepted fails the test instead of training."""
    import lamo.cli

    parse = lamo.cli.Parser.parse_args

    def parse_args(self, *args, **kwargs):
        ns = parse(self, *args, **kwargs)
        ns.func = lambda a: pytest.fail(f"accepted: {vars(a)}")
        return ns

    monkeypatch.setattr(lamo.cli.Parser, "parse_args", parse_args)


@pytest.mark.parametrize("path, action", [o for o in OPTIONS if isinstance(o[1].type, Number)],
                         ids=[i for i, o in zip(IDS, OPTIONS) if isinstance(o[1].type, Number)])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_value_outside_the_range_is_one_line_naming_the_option(path, action, capsys, parse_only, data):
    value = data.draw(_outside(action.type), label="value")
    option = action.option_strings[-1]
    assert main(_argv(path, option, value)) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.out + err, err
    assert f"{'/'.join(action.option_strings)} must be" in err or f"{option}: " in err, err
    assert err.startswith(f"{path}: error: ")


@pytest.mark.parametrize("path, action", [o for o in OPTIONS if isinstance(o[1].type, Number)],
                         ids=[i for i, o in zip(IDS, OPTIONS) if isinstance(o[1].type, Number)])
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_a_value_inside_the_range_parses(path, action, data):
    value = data.draw(_inside(action.type), label="value")
    parsed = action.type(value)
    assert action.type.contains(parsed) and parsed == (int(value) if action.type.kind is int else float(value))


def test_number_describes_its_range():
    assert Number(int, 1).describe() == "≥ 1"
    assert Number(int, 0, 10).describe() == "from 0 to 10"
    assert Number(float, 0, low_open=True).describe() == "a finite number > 0"
    assert Number(float, 0, 1, high_open=True).describe() == "a finite number in [0, 1)"
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be ≥ 1, got '0'"):
        Number(int, 1)("0")
    with pytest.raises(argparse.ArgumentTypeError, match="must be a whole number ≥ 1, got '2.5'"):
        Number(int, 1)("2.5")
    with pytest.raises(argparse.ArgumentTypeError, match="float32 holds"):
        Number(float)(repr(FLOAT_MAX * 2))
    with pytest.raises(InputError, match=r"--x must be a finite number ≥ 0, got nan"):
        Number(float, 0).check(float("nan"), "--x")
    assert Number(float, 0).check(3, "--x") == 3.0 and isinstance(Number(float, 0).check(3, "--x"), float)


# ----------------------------------------------------------------------------- --config files: the same ranges
CONFIG_COMMANDS = [(path, parser) for path, parser in all_parsers(build_parser())
                   if any(a.dest == "config" for a in parser._actions)]


@pytest.mark.parametrize("path, parser", CONFIG_COMMANDS, ids=[p for p, _ in CONFIG_COMMANDS])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_config_file_value_outside_the_range_is_refused_naming_the_option(path, parser, tmp_path, data):
    types = parser.get_default("_config_types")
    numeric = sorted(k for k, t in types.items() if isinstance(t, Number))
    key = data.draw(st.sampled_from(numeric), label="key")
    rule = types[key]
    if rule.kind is int:
        bad = data.draw(st.one_of(st.integers(max_value=int(rule.low) - 1), st.integers(min_value=int(rule.high) + 1)),
                        label="bad")
    else:
        bad = data.draw(st.one_of(st.just(float("nan")), st.just(float("inf")), st.just(-float("inf")),
                                  st.floats(max_value=rule.low, exclude_max=not rule.low_open, allow_nan=False)
                                  if rule.low is not None else st.nothing()), label="bad")
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump({key: bad}))
    args = build_parser().parse_args([*path.split()[1:], "--config", str(file)])
    with pytest.raises(InputError, match=f"--{key.replace('_', '-')} must be"):
        config_from_args(parser.get_default("_config_class"), args)
