"""Workflows over a suite's runs in a tracking store, callable from Python; the command line
(bench.cli) parses its arguments, calls these and prints.

    from bench.workflows import compare, history, leaderboard, nightly, store

    tracker, name = store.open_suite_store("suites/quickstart.yaml")
    base, new, table = compare.compare_runs(tracker, name, "previous", "latest")
    result = nightly.nightly(load_suite("suites/quickstart.yaml"))

- store.py        which store and experiment a suite file or name is read from (checked)
- history.py      a suite's finished runs: one run's cells, the last N runs, trends, one model's history
- compare.py      compare's window: which runs are base, new and history; accepting a baseline
- leaderboard.py  the HTML board page of a store's runs (bench.report.page)
- nightly.py      run afresh, compare with the previous run, record the verdict, the page

Each module imports nothing heavy at import time (MLflow, torch and pandas when called).
"""
