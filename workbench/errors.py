"""User-facing errors: one line that names what is wrong and what to do."""

from collections.abc import Iterable, Mapping
from typing import Any, Self

from pydantic import BaseModel, ValidationError


class WorkbenchError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits with 2."""

    exit_code = 2


def option_error(exc, fields: Iterable[str], prefix: str = "") -> WorkbenchError:
    """The one line for a pydantic ``ValidationError`` of an option model: the first error's
    field and message, or for an unknown field the fields that are allowed.

    Args:
        exc: the ``ValidationError``.
        fields: the model's fields, listed when the user gave one that is not.
        prefix: where the caller's users set these options, added by the caller: a dotted path
            (``data.curriculum`` names ``data.curriculum.start``), ``--`` for command-line flags
            (``--batch-size``), or nothing to name the bare parameter (``start``).
    """
    err = exc.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(part) for part in err["loc"])
    if prefix == "--":
        field = "--" + path.replace("_", "-") if path else "options"
    else:
        field = ".".join(p for p in (prefix, path) if p) or "options"
    msg = " ".join(err["msg"].removeprefix("Value error, ").split())
    if err["type"] == "extra_forbidden":
        msg = f"not an option; allowed: {', '.join(fields)}"
    elif err["type"] == "missing":
        msg = "required"
    return WorkbenchError(f"{field}: {msg}")


class OptionModel(BaseModel):
    """A group of options that users write as a mapping in a config; :meth:`from_dict` checks
    one and reports the first problem as one line naming the field."""

    @classmethod
    def from_dict(cls, options: Mapping[str, Any], prefix: str = "") -> Self:
        """Builds and checks the options of a config mapping.

        Args:
            options: the mapping of the model's fields.
            prefix: where the caller's users wrote the mapping (``data.augment``), put before
                the field an error names.

        Raises:
            WorkbenchError: not a mapping, an unknown option or a bad value, in one line.
        """
        if not isinstance(options, Mapping):
            raise WorkbenchError(
                f"{prefix or 'options'}: expected a mapping of options, got "
                f"{type(options).__name__}"
            )
        try:
            return cls(**options)
        except ValidationError as exc:
            raise option_error(exc, cls.model_fields, prefix) from None
