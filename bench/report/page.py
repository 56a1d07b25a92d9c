"""The HTML board page of a suite: one builder for the page the runner logs with every suite
run (bench.run.runner) and the one `bench leaderboard --format html` and `bench nightly`
write, with trends (bench.workflows.leaderboard)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.report.figures import suite_figures
from bench.report.html import IMAGE_MODELS, html_report, mlflow_access

if TYPE_CHECKING:
    import pandas as pd

    from bench.config.published import PublishedBlock
    from bench.report.leaderboard import Table


def board_page(board: list[Table], runs: pd.DataFrame | None, client: Any, *, name: str,
               experiment_id: str | None, ui_url: str | None,
               published: list[PublishedBlock] | None = None, trends: pd.DataFrame | None = None,
               max_models: int | None = IMAGE_MODELS, generated: str | None = None,
               ) -> tuple[str, dict[str, bytes]]:
    """(the self-contained page, {file name: PNG} of its comparison figures): the board's
    tables, the image artifacts of its runs read through `client` (an MlflowClient), the
    figures of `runs` (none without runs) and, when given, the trends of the last suite runs."""
    fetch, listing = mlflow_access(client)
    figures = suite_figures(runs, fetch, board) if runs is not None else {}  # flags from the board
    page = html_report(board, fetch, listing, max_models=max_models, title=f"Leaderboard: {name}",
                       figures=figures, experiment_id=experiment_id, ui_url=ui_url,
                       generated=generated, trends=trends, published=published)
    return page, figures
