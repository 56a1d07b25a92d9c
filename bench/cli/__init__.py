"""The command line, `bench run | validate | list | leaderboard | compare | nightly | train |
score`: parses, calls the API or a workflow, prints.

- parser.py    the parser of every command, argument types and the checks of arguments alone
- commands.py  `main` and one function per command: parse, call one function, print, exit code
- console.py   what every command prints through: escaped names, quieted libraries, --out
- lists.py     `bench list`: the registries and their options

Exit codes: 0 ok, 1 failed cells / a regression / a flagged score, 2 a user's mistake (one
line, no traceback), 75 `bench nightly` skipped (a live runner holds the suite), 130 Ctrl-C,
143 SIGTERM.
"""

from bench.cli.commands import main
from bench.cli.parser import build_parser

__all__ = ["build_parser", "main"]
