"""Pareto selection over trained variants: which are not dominated in (accuracy, cost), and which one is best
under a budget (FactorizeNet's choice of macroarchitecture, Yun & Wong, arXiv 2011.14586).

    front = pareto_front(table, maximize="accuracy", minimize=("macs",))
    best = select(table, max_macs=2_000_000, min_accuracy=0.9)   # a row of `table`
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


class NoFeasibleVariantError(ValueError):
    """No variant meets every constraint given to `select`; the message names them and the closest ones."""


def dominated(df: pd.DataFrame, maximize: str, minimize: Sequence[str]) -> pd.Series:
    """True for each row some other row beats: no worse in every column and strictly better in one."""
    better = df[[maximize]].to_numpy(float)
    costs = df[list(minimize)].to_numpy(float)
    flags = []
    for acc, cost in zip(better, costs, strict=True):
        no_worse = (better >= acc).all(1) & (costs <= cost).all(1)
        strictly = (better > acc).any(1) | (costs < cost).any(1)
        flags.append(bool((no_worse & strictly).any()))
    return pd.Series(flags, index=df.index)


def pareto_front(
    df: pd.DataFrame, maximize: str = "accuracy", minimize: str | Sequence[str] = ("macs",)
) -> pd.DataFrame:
    """The rows of `df` no other row dominates (higher `maximize`, lower every `minimize` column), cheapest
    first. Rows with a missing value in those columns are left out."""
    minimize = [minimize] if isinstance(minimize, str) else list(minimize)
    _check_columns(df, [maximize, *minimize])
    complete = df.dropna(subset=[maximize, *minimize])
    front = complete[~dominated(complete, maximize, minimize)]
    return front.sort_values([*minimize, maximize], ascending=[True] * len(minimize) + [False])


def select(
    df: pd.DataFrame,
    *,
    max_macs: int | None = None,
    max_params: int | None = None,
    min_accuracy: float | None = None,
    accuracy_col: str = "accuracy",
    macs_col: str = "macs",
    params_col: str = "params",
) -> pd.Series:
    """The most accurate row within the budget (ties: fewer MACs, then fewer params).

    Raises NoFeasibleVariantError naming the constraints and the three closest rows when none fits.
    """
    _check_columns(df, [accuracy_col, macs_col, params_col])
    limits = _limits(max_macs, max_params, min_accuracy, accuracy_col, macs_col, params_col)
    shortfall = sum(
        (_shortfall(df[col], bound, upper) for col, (bound, upper) in limits.items()),
        start=pd.Series(0.0, index=df.index),
    )
    fits = df[(shortfall == 0) & df[accuracy_col].notna()]
    if fits.empty:
        raise NoFeasibleVariantError(
            _no_fit_message(df, limits, shortfall, [accuracy_col, macs_col, params_col])
        )
    ranked = fits.sort_values([accuracy_col, macs_col, params_col], ascending=[False, True, True])
    return ranked.iloc[0]


def _limits(max_macs, max_params, min_accuracy, accuracy_col, macs_col, params_col) -> dict[str, tuple]:
    """`{column: (bound, is_upper_bound)}` for the constraints given."""
    given = {macs_col: (max_macs, True), params_col: (max_params, True), accuracy_col: (min_accuracy, False)}
    return {col: spec for col, spec in given.items() if spec[0] is not None}


def _shortfall(values: pd.Series, bound: float, upper: bool) -> pd.Series:
    """How far each value misses `bound`, relative to it (0 where it fits; a missing value misses by 1)."""
    miss = (values - bound) if upper else (bound - values)
    return (miss.clip(lower=0) / max(abs(bound), 1e-12)).fillna(1.0)


def _no_fit_message(df: pd.DataFrame, limits: dict, shortfall: pd.Series, columns: list[str]) -> str:
    wanted = ", ".join(
        f"{col} {'<=' if upper else '>='} {_fmt(bound)}" for col, (bound, upper) in limits.items()
    )
    closest = df.assign(_miss=shortfall).sort_values("_miss").head(3)
    rows = "; ".join(
        f"{idx}: " + ", ".join(f"{c}={_fmt(row[c])}" for c in columns) for idx, row in closest.iterrows()
    )
    return f"no variant meets {wanted}; closest: {rows}"


def _fmt(value: float) -> str:
    """Whole numbers as integers (MACs, params), others to 4 significant digits."""
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _check_columns(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the table; it has {list(df.columns)}")


__all__ = ["NoFeasibleVariantError", "dominated", "pareto_front", "select"]
