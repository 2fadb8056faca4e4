"""User mistakes: reported as one line on stderr with a non-zero exit, never a traceback."""


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and what to do."""
