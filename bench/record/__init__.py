"""Recording: the cell record and MLflow (the only layer that talks to MLflow), with values' and flags' declarations."""
