"""Configuration: a YAML suite -> validated cells (pure data, nothing heavy)."""
