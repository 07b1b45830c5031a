"""Thread policy (issue 20): a training loop alone vs beside one busy CPU job, at 1 thread and at all cores.

    OMP_NUM_THREADS=1 python -m benchmarks.thread_policy [--steps 150] [--repeats 2]

Each measurement is a fresh process (`use_threads(n)` then LeNet-5 training steps on random MNIST-sized
batches); "beside" runs `python -c 'while 1: pass'` next to it. Prints wall and CPU seconds (the minimum over
the repeats) and the slowdown beside / alone per thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = """
import json, resource, sys, time
import torch
from qkit.threads import use_threads
from qkit.models import build_model
n = use_threads(int(sys.argv[1]))
g = torch.Generator().manual_seed(0)
model = build_model("lenet5")
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
for _ in range(5):
    torch.nn.functional.cross_entropy(model(x), y).backward()
start, cpu = time.perf_counter(), time.process_time()
for _ in range(int(sys.argv[2])):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
print(json.dumps({"threads": n, "wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
"""


def measure(threads: int, steps: int, beside: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "QKIT_NUM_THREADS")}
    busy = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if beside else None
    try:
        if busy is not None:
            time.sleep(0.5)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(threads), str(steps)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    args = parser.parse_args()
    best: dict[tuple[int, bool], dict] = {}
    for _ in range(args.repeats):  # interleaved, so slow phases of a shared machine hit every mode
        for threads in args.threads:
            for beside in (False, True):
                m = measure(threads, args.steps, beside)
                key = (threads, beside)
                if key not in best or m["wall"] < best[key]["wall"]:
                    best[key] = m
    heads = ("threads", "alone wall", "alone cpu", "beside wall", "beside cpu", "slowdown")
    print(" ".join(f"{h:>11}" for h in heads))
    for threads in args.threads:
        a, b = best[(threads, False)], best[(threads, True)]
        cells = (
            f"{threads}",
            f"{a['wall']:.2f}",
            f"{a['cpu']:.2f}",
            f"{b['wall']:.2f}",
            f"{b['cpu']:.2f}",
            f"{b['wall'] / a['wall']:.2f}x",
        )
        print(" ".join(f"{c:>11}" for c in cells))


if __name__ == "__main__":
    main()
