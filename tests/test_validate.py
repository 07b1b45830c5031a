"""qkit._validate: range checks name the bad value; one type checker for configs and papermill type names."""

import pytest

from qkit._validate import check_bits, check_sparsity, describe_type, fits_type, type_from_name


@pytest.mark.parametrize(
    "type_name, value, fits",
    [
        ("Optional[int]", None, True),
        ("Optional[int]", 3, True),
        ("Optional[int]", "3", False),
        ("int", True, False),  # a bool is not an int parameter
        ("float", 1, True),  # an int is a fine float
        ("List[int]", [1, 2], True),
        ("list[int]", [1, "a"], False),
        ("list", (1, 2), True),
        ("int | None", None, True),
        ("dict", {"a": 1}, True),
        ("dict", [1], False),
        ("None", object(), True),  # papermill's "None": unannotated, anything goes
        ("SomeClass", 3, True),  # a type qkit does not model: the notebook decides
    ],
)
def test_fits_type_on_papermill_type_names(type_name, value, fits):
    assert fits_type(value, type_from_name(type_name)) is fits


def test_describe_type_in_words():
    assert describe_type(type_from_name("Optional[list[int]]")) == "a list of int or None"


@pytest.mark.parametrize(
    "check, value, message",
    [
        (check_bits, 0, "bits must be from 2 to 16, got 0"),
        (check_bits, 4.0, "bits must be an int"),
        (check_sparsity, 1.5, "sparsity must be in [0, 1), got 1.5"),
    ],
)
def test_range_checks_name_the_bad_value(check, value, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        check(value)
