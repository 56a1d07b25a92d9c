"""Suite texts several test files run: one real model, one instant metric (the
`test_constant` metric that tests/conftest.py registers), so a test pays for the runner and
the store, not for a computation."""

INSTANT = """\
name: tiny
datasets:
  digits: {source: digits}
models:
  real: {source: reference, kind: real}
metrics:
  test_constant: {}
"""
