"""The one exception type for mistakes a user can fix (bad name, bad YAML, bad value).

Scripts catch it at the top and print its message on one line with exit status 2; every
other exception is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input from the user; the message names the problem and what to do."""
