"""`python -m benchmarks`: the gateway's benchmark (docs/performance.md).

The gateway runs as its own process, started with the command users run; this process is the
load generator. See `__main__` for the scenarios and `load` for how the load stays cheap.
"""
