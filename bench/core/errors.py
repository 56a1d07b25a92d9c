"""The one exception type for mistakes a user can make (bad YAML, missing file, mismatch).

The CLI prints its message without a traceback; everything else is a bug and keeps its traceback.
"""


class BenchError(Exception):
    """A user-fixable problem. The message names the field or file and says what to do."""
