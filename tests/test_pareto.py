"""qkit.pareto on hand-made tables: the front, and select() under budgets."""

import pandas as pd
import pytest

from qkit.pareto import NoFeasibleVariantError, pareto_front, select


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "level": [0, 1, 2, 3, 4],
            "accuracy": [0.95, 0.96, 0.94, 0.94, 0.90],
            "macs": [500, 400, 300, 350, 100],
            "params": [50, 45, 30, 20, 10],
        }
    )


def test_front_in_accuracy_and_macs(table) -> None:
    # level 0 loses to level 1 (better and cheaper); level 3 to level 2 (as accurate, cheaper)
    assert pareto_front(table)["level"].tolist() == [4, 2, 1]


def test_front_in_accuracy_and_params(table) -> None:
    assert pareto_front(table, minimize="params")["level"].tolist() == [4, 3, 1]


def test_front_in_accuracy_macs_and_params(table) -> None:
    assert pareto_front(table, minimize=("macs", "params"))["level"].tolist() == [4, 2, 3, 1]


def test_identical_rows_are_both_kept_and_missing_values_dropped() -> None:
    df = pd.DataFrame({"accuracy": [0.9, 0.9, None], "macs": [10, 10, 1]})
    assert pareto_front(df).index.tolist() == [0, 1]


def test_unknown_column_is_named() -> None:
    with pytest.raises(ValueError, match=r"\['flops'\]"):
        pareto_front(pd.DataFrame({"accuracy": [1.0]}), minimize="flops")


def test_select_without_budget_is_the_most_accurate(table) -> None:
    assert select(table)["level"] == 1


def test_select_under_budgets(table) -> None:
    assert select(table, max_macs=350)["level"] == 2  # ties 0.94 with level 3: fewer MACs wins
    assert select(table, max_params=25)["level"] == 3
    assert select(table, max_macs=200)["level"] == 4
    assert select(table, max_macs=350, min_accuracy=0.94)["level"] == 2


def test_select_ties_prefer_fewer_macs_then_params() -> None:
    df = pd.DataFrame({"level": [0, 1, 2], "accuracy": [0.9] * 3, "macs": [5, 3, 3], "params": [1, 9, 4]})
    assert select(df)["level"] == 2


def test_select_uses_the_named_accuracy_column(table) -> None:
    table["accuracy_4bit"] = [0.5, 0.6, 0.7, 0.2, 0.1]
    assert select(table, accuracy_col="accuracy_4bit")["level"] == 2


def test_no_fit_names_the_constraints_and_the_closest(table) -> None:
    with pytest.raises(NoFeasibleVariantError) as info:
        select(table, max_macs=150, min_accuracy=0.95)
    message = str(info.value)
    assert "macs <= 150" in message and "accuracy >= 0.95" in message
    assert message.index("4:") < message.index("2:")  # level 4 misses least (only its accuracy)
    assert isinstance(info.value, ValueError)
