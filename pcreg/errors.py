"""User-facing errors: printed as one clear line by the command line, never as a traceback."""


class UserError(Exception):
    """A problem the user can fix (bad config value, missing file, unknown name)."""
