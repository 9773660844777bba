"""Messages built without their checks: how tests make the bytes a hostile peer could send."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

_T = TypeVar("_T")


def unchecked(cls: type[_T], *args: Any, **kwargs: Any) -> _T:
    """``cls(*args, **kwargs)`` without ``__post_init__``: a message that breaks a rule, for
    a test to encode and show that the receiving side refuses it."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    values = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    values |= dict(zip((f.name for f in fields), args, strict=False)) | kwargs
    message = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(message, name, value)
    return message


def unchecked_replace(message: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` without the checks."""
    values = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}  # type: ignore[arg-type]
    return unchecked(type(message), **(values | changes))
