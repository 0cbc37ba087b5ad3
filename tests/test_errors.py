"""The one-line option errors: the caller adds where its users set the options."""

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from workbench.errors import WorkbenchError, option_error


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    batch_size: int = 1

    @field_validator("batch_size")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be a positive integer, got {value}")
        return value


def error(prefix: str = "", **values) -> str:
    with pytest.raises(ValidationError) as exc:
        Options(**values)
    made = option_error(exc.value, Options.model_fields, prefix)
    assert isinstance(made, WorkbenchError) and len(str(made).splitlines()) == 1
    return str(made)


@pytest.mark.parametrize(
    "prefix, field", [("", "batch_size"), ("data.loader", "data.loader.batch_size"),
                      ("--", "--batch-size")],
)  # fmt: skip
def test_the_caller_names_the_field(prefix, field):
    assert error(prefix, name="a", batch_size=0) == f"{field}: must be a positive integer, got 0"


def test_unknown_and_missing_fields():
    assert error(name="a", size=2) == "size: not an option; allowed: name, batch_size"
    assert error("data.loader") == "data.loader.name: required"
