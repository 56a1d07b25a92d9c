"""Shared infrastructure: the user-error type, plugin registries, safe file names, progress bars."""
