"""qkit's benchmark harness (`python -m benchmarks`): each figure a ratio against a reference timed in the
same process, a table, and one JSON object with every figure as the last line of stdout. See
docs/performance.md for the latest figures."""
