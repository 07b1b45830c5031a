"""The `qkit` command: list, reproduce, sweep, classroom. Exit code 0 only when every run finished."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from . import QkitError
from .batch import run_all
from .classroom import make_classroom
from .executors import open_executor
from .notebooks import discover, resolve
from .params import RESERVED, grid_points, load_yaml, parse_cli_value, validate
from .runs import RunSpec, plan
from .scorecard import write_scorecard

NAMES_HELP = "notebook stems or unambiguous prefixes such as 01 (default: all)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `qkit` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.command(args)
    except QkitError as exc:
        print(f"qkit: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `qkit list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("qkit: interrupted; finished runs are kept, run the same command to go on", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qkit", description="Reproduce quantization papers from notebooks.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    listing = _command(sub, "list", cmd_list, "list the reproductions and their parameters")
    listing.add_argument("names", nargs="*", metavar="NAME", help=NAMES_HELP)
    reproduce = _command(sub, "reproduce", cmd_reproduce, "run reproductions and write the scorecard")
    reproduce.add_argument("names", nargs="*", metavar="NAME", help=NAMES_HELP)
    _add_run_options(reproduce)
    sweep = _command(sub, "sweep", cmd_sweep, "run one notebook over a grid of parameters")
    sweep.add_argument("name", metavar="NAME", help="notebook stem or prefix")
    sweep.add_argument("--grid", required=True, metavar="FILE", help="YAML mapping parameter names to lists")
    _add_run_options(sweep)
    classroom = _command(sub, "classroom", cmd_classroom, "write student copies (solutions emptied) and "
                                                             "teacher copies of the notebooks")
    classroom.add_argument("out", metavar="OUT_DIR", help="writes OUT_DIR/student/ and OUT_DIR/teacher/")
    return parser


def _command(sub: Any, name: str, func: Any, help: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
    parser.add_argument("--notebooks", metavar="DIR",
                        help="notebooks folder (default: $QKIT_NOTEBOOKS, else the repo's reproductions/)")
    parser.set_defaults(command=func)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set a parameter (typed like papermill: 4 is an int, 0.5 a float, True a bool)")
    parser.add_argument("-f", "--params-file", metavar="FILE", help="YAML file of parameters (-p wins)")
    parser.add_argument("--preset", choices=("quick", "full"), help="the notebooks' preset parameter")
    parser.add_argument("--out", default="runs", metavar="DIR", help="output folder (default: runs)")
    parser.add_argument("--timeout", type=float, metavar="S", help="per-cell time limit in seconds")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://host:8786")
    where.add_argument("--dask", action="store_true", help="run on a local Dask cluster of --workers workers")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="runs at a time (default: 1)")


def cmd_list(args: argparse.Namespace) -> int:
    for nb in resolve(args.names, discover(args.notebooks)):
        print(f"{nb.name}: {nb.title}")
        for p in nb.params.values():
            if p.name not in RESERVED:
                print(f"    {p.name}: {p.type_name} = {p.default}" + (f"  # {p.help}" if p.help else ""))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    selected = resolve(args.names, discover(args.notebooks))
    base = _base_params(args)
    return _run(args, [plan(nb, validate(nb, base), args.out) for nb in selected])


def cmd_sweep(args: argparse.Namespace) -> int:
    (nb,) = resolve([args.name], discover(args.notebooks))
    base = _base_params(args)
    grid = load_yaml(args.grid, "grid file")
    both = sorted(set(grid) & set(base))
    if both:
        raise QkitError(f"parameter(s) {both} are both in the grid and given with -p/-f/--preset; keep one")
    points = grid_points(grid)
    return _run(args, _unique([plan(nb, validate(nb, {**base, **point}), args.out) for point in points]))


def cmd_classroom(args: argparse.Namespace) -> int:
    notebooks = discover(args.notebooks)
    student, teacher = make_classroom([nb.path for nb in notebooks], args.out)
    print(f"{len(notebooks)} notebooks: students {student}, teacher {teacher}")
    return 0


def _base_params(args: argparse.Namespace) -> dict[str, Any]:
    params = load_yaml(args.params_file) if args.params_file else {}
    params.update({name: parse_cli_value(value) for name, value in args.param})
    if args.preset:
        params["preset"] = args.preset
    return params


def _run(args: argparse.Namespace, specs: list[RunSpec]) -> int:
    """Execute the validated runs, write the scorecard, and report."""
    if args.workers < 1:
        raise QkitError(f"--workers must be at least 1, got {args.workers}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with open_executor(args.workers, args.scheduler, args.dask) as executor:
        records = run_all(specs, executor, args.timeout)
    summary = write_scorecard(args.out)
    failed = sum(r["status"] != "finished" for r in records)
    print(f"{len(records) - failed} of {len(records)} runs finished; scorecard: {summary}")
    return 1 if failed else 0


def _unique(specs: list[RunSpec]) -> list[RunSpec]:
    return list({spec.folder: spec for spec in specs}.values())


if __name__ == "__main__":
    sys.exit(main())
