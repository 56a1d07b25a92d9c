"""Workflows over a suite's runs in a tracking store, callable from Python; the command line
(bench.cli) parses its arguments, calls these and prints.

    import bench                     # the functions of api.py, by a suite file or name
    night = bench.nightly("suites/nightly.yaml")
    result = bench.compare("nightly", "previous", "latest")

    from bench.workflows import compare, store   # the steps, on an open store
    tracker, name = store.open_suite_store("suites/quickstart.yaml")
    base, new, table = compare.compare_runs(tracker, name, "previous", "latest")

- api.py          bench.leaderboard / compare / accept / history / trends / nightly: a suite file
                  or name in, values out; what the commands call
- prepare.py      a suite file made ready to run: validated, models:/ found, executor built
- store.py        which store and experiment a suite file or name is read from (checked)
- history.py      a suite's finished runs: one run's cells, the last N runs, trends, one model's history
- compare.py      compare's window: which runs are base, new and history; accepting a baseline
- leaderboard.py  the board of a store's runs: text, or the HTML page (bench.report.page)
- nightly.py      run afresh, compare with the previous run, record the verdict, the page; a
                  suite a live runner holds is skipped (SuiteInProgress)

MLflow and torch are imported when a function is called, not at import time (pandas is,
with bench.report.html's IMAGE_MODELS).
"""
