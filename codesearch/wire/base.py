"""The models' base classes, optional fields that are left out of the JSON, and the one rule
that turns a failed validation into a one-line message for the sender.

A field's message is ``'{name}' must be ...``, from its type and bounds (a whole number from
1 to 1000, a list of strings, true or false, an object, a string); a value outside an enum is
``unknown {enum} 'x' (known: ...)``, a key a closed model does not know ``unknown {noun} 'x'
(known: ...)``. :class:`Says` overrides a field's message where the generic one would be
vague.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, ClassVar, TypeVar, Union

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic.json_schema import SkipJsonSchema

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# A field that is left out of the JSON when it has no value: ``x: Maybe[int] = omitted()``.
Maybe = Union[T, SkipJsonSchema[None]]  # noqa: UP007 (a generic alias; `|` cannot take T)


def _is_none(value: object) -> bool:
    return value is None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # "absent", not null: the schema says nothing


def omitted(description: str | None = None) -> Any:
    """The default of a :data:`Maybe` field: None, and then no key in the JSON."""
    return Field(
        default=None, exclude_if=_is_none, json_schema_extra=_no_default, description=description
    )


class Wire(BaseModel):
    """A message or a part of one. Keys it does not know are ignored (an LSP client adds its
    own, e.g. ``workDoneToken``)."""

    model_config = ConfigDict(
        extra="ignore", serialize_by_alias=True, validate_by_name=True, defer_build=True
    )
    noun: ClassVar[str] = "field"  # what an unknown key is called in a closed model's errors
    shape: ClassVar[str] = ""  # the message when the whole message is not an object

    def dump(self) -> dict[str, Any]:
        """The JSON object (fields in declaration order, absent ones left out)."""
        return self.model_dump(mode="json")


class Closed(Wire):
    """A model whose keys are all known: another key is an error (and the schema says so)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Says:
    """A field's own one-line error, ``{name}`` standing for its name: ``wrong`` for a value
    of the wrong type or range, ``empty`` for a missing or empty one (else ``wrong``),
    ``long`` for a string over its ``max_length`` (``{max}``: the limit)."""

    wrong: str = ""
    empty: str = ""
    long: str = ""


def parse(model: type[M], data: object, error: type[Exception], dotted: bool = True) -> M:
    """``data`` as ``model``; ``error`` with one line when it does not fit. ``dotted``: name a
    nested field by its path (``'filters.kinds'``), else by its own name (``'kinds'``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(explain(exc, model, dotted)) from None


def explain(exc: ValidationError, model: type[BaseModel], dotted: bool = True) -> str:
    """The first problem of a failed validation, in one line."""
    problem = exc.errors()[0]
    kind, value, loc = problem["type"], problem.get("input"), problem["loc"]
    names, field, holder = _locate(model, loc)
    if kind == "extra_forbidden" and holder is not None:
        known = ", ".join(f.alias or n for n, f in holder.model_fields.items())
        return f"unknown {getattr(holder, 'noun', 'field')} {loc[-1]!r} (known: {known})"
    if field is None:
        shape = getattr(model, "shape", "")
        return shape or f"the message must be an object ({problem['msg']})"
    name = ".".join(names) if dotted else names[-1]
    enum = _enum_in(field.annotation)
    if kind == "enum" and enum is not None:
        known = ", ".join(str(member) for member in enum)
        return f"unknown {enum.__name__.lower()} {value!r} (known: {known})"
    says = next((m for m in field.metadata if isinstance(m, Says)), Says())
    if kind == "value_error":  # a validator's own words: ``ValueError("must be ...")``
        return f"'{name}' {problem['ctx']['error']}"
    if kind in ("string_too_long", "too_long"):
        limit = problem.get("ctx", {}).get("max_length")
        if says.long and kind == "string_too_long":
            return says.long.replace("{name}", name).replace("{max}", str(limit))
        what = "characters" if kind == "string_too_long" else "items"
        return f"'{name}' is too long (at most {limit} {what})"
    empty = kind == "missing" or value is None or (isinstance(value, str | list) and not value)
    if says.empty and empty:
        return says.empty.replace("{name}", name)
    if says.wrong:
        return says.wrong.replace("{name}", name)
    if kind == "missing":
        return f"'{name}' is required"
    return f"'{name}' must be {_expected(field, problem['msg'])}"


def _locate(
    model: type[BaseModel], loc: tuple[int | str, ...]
) -> tuple[list[str], FieldInfo | None, type[BaseModel] | None]:
    """The field names along ``loc`` (list indexes and union branches skipped), the last
    field, and the model the last key was looked up in."""
    names: list[str] = []
    field: FieldInfo | None = None
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str):
            continue
        by_alias = {f.alias or n: f for n, f in current.model_fields.items()}
        if part in by_alias:
            field = by_alias[part]
            names.append(part)
            current = _model_in(field.annotation)
    return names, field, current


def _args(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for a in _args(annotation) if (m := _model_in(a)) is not None), None)


def _enum_in(annotation: Any) -> type[Enum] | None:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation
    return next((e for a in _args(annotation) if (e := _enum_in(a)) is not None), None)


def _bare(annotation: Any) -> tuple[Any, list[Any]]:
    """The type under Annotated / Optional wrappers, and the metadata met on the way."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            metadata.extend(annotation.__metadata__)
            annotation = annotation.__origin__
        elif origin in (Union, types.UnionType):
            kept = [a for a in _args(annotation) if a is not type(None) and not _is_skip(a)]
            annotation = kept[0] if kept else type(None)
        else:
            return annotation, metadata


def _is_skip(annotation: Any) -> bool:
    if typing.get_origin(annotation) is not Annotated:
        return False
    inner = annotation.__origin__
    return inner is type(None) and any(isinstance(m, SkipJsonSchema) for m in _args(annotation))


def _expected(field: FieldInfo, fallback: str) -> str:
    bare, metadata = _bare(field.annotation)
    metadata += field.metadata
    metadata += [m for info in metadata if isinstance(info, FieldInfo) for m in info.metadata]
    origin = typing.get_origin(bare) or bare
    if origin is list:
        return "a list of strings"
    if bare is bool:
        return "true or false"
    if bare is int:
        low = next((m.ge for m in metadata if isinstance(m, Ge)), None)
        high = next((m.le for m in metadata if isinstance(m, Le)), None)
        span = (f" from {low}" if low is not None else "") + (f" to {high}" if high else "")
        return f"a whole number{span}"
    if bare is float:
        return "a number"
    if bare is str:
        return "a string"
    if origin is dict or (isinstance(bare, type) and issubclass(bare, BaseModel)):
        return "an object"
    return fallback[:1].lower() + fallback[1:]
