"""The one exception type for failures roost expects and explains to the user in one line."""


class RoostError(Exception):
    """An expected failure: its message is shown to the user as is, without a traceback."""
