"""`python -m benchmarks [--only NAME]... [--quick] [--skip-notebooks]`: run the figures, print the table,
then one JSON line `{"machine": {...}, "command": "...", "figures": {name: {...}}}`."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys

import torch

from benchmarks import encoding, evolution, fake_quant, notebooks, qat_step
from benchmarks._timing import Figure

MODULES = {
    "fake_quant": fake_quant,
    "qat_step": qat_step,
    "evolution": evolution,
    "encoding": encoding,
    "notebooks": notebooks,
}
COLUMNS = ("figure", "value", "reference", "ratio", "target", "met?")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=list(MODULES),
        metavar="NAME",
        help=f"run only this figure group (repeatable): {', '.join(MODULES)}",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repetition (smoke test)")
    parser.add_argument("--skip-notebooks", action="store_true", help="leave out the notebook runs")
    return parser.parse_args(argv)


def machine() -> dict:
    """What the figures were measured on."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.is_available(),
        "torch_threads": torch.get_num_threads(),
    }


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g} {unit}".strip()


def table(figures: list[Figure]) -> str:
    """A fixed-width table, one row per figure."""
    met = {True: "yes", False: "NO", None: "-"}
    rows = [COLUMNS] + [
        (f.name, _fmt(f.value, f.unit), _fmt(f.reference, f.unit), _fmt(f.ratio), f.target or "-", met[f.met])
        for f in figures
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)  # the same single thread for qkit and every reference
    names = args.only or list(MODULES)
    if args.skip_notebooks:
        names = [n for n in names if n != "notebooks"]
    figures: list[Figure] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        figures += MODULES[name].run(args.quick)
    print(table(figures))
    for f in figures:
        if f.note:
            print(f"  {f.name}: {f.note}")
    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    result = {"machine": machine(), "command": command, "figures": {f.name: f.to_json() for f in figures}}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
