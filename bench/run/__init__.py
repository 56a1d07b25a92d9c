"""Running: cells -> results (the runner, the per-process store and cache, threads and memory budgets, baseline training)."""
