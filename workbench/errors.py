"""User-facing errors: one line that names what is wrong and what to do."""

from collections.abc import Iterable


class WorkbenchError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits with 2."""

    exit_code = 2


def option_error(exc, fields: Iterable[str]) -> WorkbenchError:
    """The one line for a pydantic ``ValidationError`` of an option model: the first error's
    field and message, or for an unknown field the fields that are allowed."""
    err = exc.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in err["loc"]) or "options"
    msg = " ".join(err["msg"].removeprefix("Value error, ").split())
    if err["type"] == "extra_forbidden":
        msg = f"not an option; allowed: {', '.join(fields)}"
    return WorkbenchError(f"{field}: {msg}")
