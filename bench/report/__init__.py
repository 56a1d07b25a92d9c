"""Reporting: records -> leaderboards (text, HTML, LaTeX), comparisons, gates, figures and the docs' value table."""
