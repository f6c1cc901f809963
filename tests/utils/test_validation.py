"""The argument checks every package shares: each names the argument and coerces nothing."""

import numpy as np
import pytest

from sccalmflow.utils import check_int, check_number, check_numbers, check_seed, check_sequence


def test_check_numbers_returns_floats_in_order():
    out = check_numbers("temperatures", [1, np.float32(0.5), np.int64(2)], minimum=0)
    assert out == (1.0, 0.5, 2.0)
    assert all(type(v) is float for v in out)
    assert check_numbers("x", np.array([0.25, 3.0])) == (0.25, 3.0)
    assert check_numbers("x", (v for v in (1.0, 2.0))) == (1.0, 2.0)  # any iterable
    assert check_numbers("x", [1.0, 1.0]) == (1.0, 1.0)  # repeats allowed unless distinct


@pytest.mark.parametrize(
    ("values", "kwargs", "error", "match"),
    [
        ("0.5", {}, TypeError, r"`x` must be a sequence of numbers, got '0.5' \(str\)"),
        (b"01", {}, TypeError, "`x` must be a sequence of numbers"),
        (0.5, {}, TypeError, r"for one value pass \[0.5\]"),
        (None, {}, TypeError, "`x` must be a sequence of numbers, got None"),
        ({"a": 1.0}, {}, TypeError, "`x` must be a sequence of numbers"),
        ([], {}, ValueError, "`x` must be a non-empty sequence of numbers"),
        (np.ones((2, 2)), {}, ValueError, r"`x` must be 1-dimensional, got shape \(2, 2\)"),
        ([1.0, "2"], {}, TypeError, r"`x\[1\]` must be a number, got '2' \(str\)"),
        ([True], {}, TypeError, r"`x\[0\]` must be a number, got True \(bool\)"),
        ([np.bool_(True)], {}, TypeError, r"`x\[0\]` must be a number"),
        ([1.0, None], {}, TypeError, r"`x\[1\]` must be a number"),
        ([1.0, float("inf")], {}, ValueError, r"`x\[1\]` must be finite"),
        ([np.nan], {}, ValueError, r"`x\[0\]` must be finite"),
        ([0.5, -1.0], {"minimum": 0}, ValueError, r"`x\[1\]` must be at least 0"),
        ([0.0], {"minimum": 0, "exclusive_minimum": True}, ValueError, "greater than 0"),
        ([1.0, 2.0, 1.0, 2.0], {"distinct": True}, ValueError, r"repeat a value; \[1.0, 2.0\]"),
    ],
)
def test_check_numbers_refuses(values, kwargs, error, match):
    with pytest.raises(error, match=match):
        check_numbers("x", values, **kwargs)


def test_check_sequence_keeps_the_elements_and_names_them():
    assert check_sequence("seeds", (3, 4), what="seeds") == [3, 4]
    with pytest.raises(TypeError, match=r"`seeds` must be a sequence of seeds.*\[3\]"):
        check_sequence("seeds", 3, what="seeds")
    with pytest.raises(ValueError, match="non-empty sequence of seeds"):
        check_sequence("seeds", [], what="seeds")


def test_scalar_checks_coerce_nothing():
    with pytest.raises(TypeError, match="must be an integer"):
        check_int("n", 2.0)
    with pytest.raises(TypeError, match="must be an integer"):
        check_int("n", True)
    with pytest.raises(TypeError, match="must be a number"):
        check_number("t", "1")
    with pytest.raises(ValueError, match="at most 4294967295"):
        check_seed("seed", 2**32)
    assert check_int("n", np.int64(3)) == 3 and type(check_int("n", np.int64(3))) is int
