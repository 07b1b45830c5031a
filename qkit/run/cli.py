"""The `qkit` command: list, reproduce, sweep, classroom. Exit code 0 only when every run finished."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import QkitError
from .batch import run_all
from .classroom import make_classroom
from .executors import open_executor
from .notebooks import discover, resolve
from .params import RESERVED, grid_points, load_yaml, parse_cli_value, validate
from .runs import RunSpec, plan, settle
from .scorecard import write_scorecard

NAMES_HELP = "notebook stems or unambiguous prefixes such as 01 (default: all)"
# Per-cell time limit when --timeout is not given: a hung kernel must not hold `qkit reproduce` forever. The
# slowest quick-preset cell takes a few minutes on 2 CPU cores, so 30 min only stops what is stuck; the full
# preset's training cells can run for hours on a CPU, so they get 6 h. --timeout 0 means no limit.
DEFAULT_TIMEOUT_S = {"smoke": 1800.0, "quick": 1800.0, "full": 6 * 3600.0}


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
    except OSError as exc:  # a full disk, a folder gone or read-only mid-run: one line, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"qkit: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
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
    classroom = _command(
        sub,
        "classroom",
        cmd_classroom,
        "write student copies (solutions emptied) and teacher copies of the notebooks",
    )
    classroom.add_argument("out", metavar="OUT_DIR", help="writes OUT_DIR/student/ and OUT_DIR/teacher/")
    classroom.add_argument(
        "--force",
        action="store_true",
        help="overwrite notebooks already in OUT_DIR (default: refuse, so no edited copy is lost)",
    )
    return parser


def _command(sub: Any, name: str, func: Any, help: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
    parser.add_argument(
        "--notebooks",
        metavar="DIR",
        help="notebooks folder (default: $QKIT_NOTEBOOKS, else the notebooks installed with qkit)",
    )
    parser.set_defaults(command=func)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter (typed like papermill: 4 is an int, 0.5 a float, True a bool)",
    )
    parser.add_argument("-f", "--params-file", metavar="FILE", help="YAML file of parameters (-p wins)")
    parser.add_argument("--preset", choices=("quick", "full"), help="the notebooks' preset parameter")
    parser.add_argument("--out", default="runs", metavar="DIR", help="output folder (default: runs)")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="per-cell time limit in seconds, 0 for none (default: 1800, 21600 for "
        "preset full); a cell over it fails the run, naming the cell",
    )
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
    check_out(args.out)
    selected = resolve(args.names, discover(args.notebooks))
    base = _base_params(args)
    return _run(args, [plan(nb, validate(nb, base), args.out) for nb in selected])


def cmd_sweep(args: argparse.Namespace) -> int:
    check_out(args.out)
    (nb,) = resolve([args.name], discover(args.notebooks))
    base = _base_params(args)
    grid = load_yaml(args.grid, "grid file")
    both = sorted(set(grid) & set(base))
    if both:
        raise QkitError(f"parameter(s) {both} are both in the grid and given with -p/-f/--preset; keep one")
    points = grid_points(grid)
    return _run(args, _unique([plan(nb, validate(nb, {**base, **point}), args.out) for point in points]))


def cmd_classroom(args: argparse.Namespace) -> int:
    check_out(args.out, "OUT_DIR")
    notebooks = discover(args.notebooks)
    student, teacher = make_classroom([nb.path for nb in notebooks], args.out, force=args.force)
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
    timeout = _timeout(args.timeout, specs)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with open_executor(args.workers, args.scheduler, args.dask) as executor:
        records = run_all(specs, executor, timeout)
    records = [settle(spec, record) for spec, record in zip(specs, records, strict=True)]
    summary = write_scorecard(args.out)
    failed = sum(r["status"] != "finished" for r in records)
    print(f"{len(records) - failed} of {len(records)} runs finished; scorecard: {summary}")
    return 1 if failed else 0


def _timeout(given: float | None, specs: list[RunSpec]) -> float | None:
    """The per-cell limit papermill gets: --timeout (0 = none), else the default for the slowest preset."""
    if given is None:
        presets = {spec.params.get("preset", "quick") for spec in specs}
        return max(DEFAULT_TIMEOUT_S.get(str(p), DEFAULT_TIMEOUT_S["full"]) for p in presets or {"quick"})
    if given != given or given < 0:  # NaN or negative
        raise QkitError(f"--timeout must be a number of seconds >= 0 (0 for no limit), got {given}")
    return None if given in (0, float("inf")) else given


def check_out(out: str | os.PathLike, option: str = "--out") -> Path:
    """Refuse, before anything runs, an output folder qkit could not write: a file, a path under a file, a
    folder without write permission. Creates nothing."""
    path = Path(out).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is under {str(existing)!r}, which is a file"
        raise QkitError(f"{option} {str(out)!r} {where}; give a folder")
    try:  # the OS decides (root ignores mode bits, a read-only mount refuses everyone): try a temp file
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise QkitError(f"cannot write to {option} {str(out)!r} ({str(existing)!r}: {reason})") from exc
    return path


def _unique(specs: list[RunSpec]) -> list[RunSpec]:
    return list({spec.folder: spec for spec in specs}.values())


if __name__ == "__main__":
    sys.exit(main())
