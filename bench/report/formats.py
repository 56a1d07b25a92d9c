"""The output formats and defaults the CLI offers, in a module that imports nothing: the parser
reads them for `--help` and argument checks without loading pandas, numpy or Jinja2 (0.87 s
of imports on every `bench` command before)."""

FORMATS = ("markdown", "csv", "json", "latex", "html")  # `bench leaderboard --format`
TEXT_FORMATS = ("markdown", "csv", "json", "latex")  # render(); html needs artifacts: bench.report.html
COMPARE_FORMATS = ("markdown", "json")  # what bench.report.compare.render writes
IMAGE_MODELS = 50  # per dataset: the page embeds the images of its first ranked models
