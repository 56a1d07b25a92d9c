"""Shared-work infrastructure every plugin may use: the in-process store of work shared by
cells (samples, features, classifiers), the content-addressed disk cache, and the checks on
a generator's output. Imports only bench.core and bench.record below it."""
