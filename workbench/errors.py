"""User-facing errors: one line that names what is wrong and what to do."""


class WorkbenchError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits with 2."""

    exit_code = 2
