"""Catena-X JSON payloads to record messages and back, checked against the models. Pure.

One walker reads every model: the message descriptor gives each property's JSON name and
nesting, ``_model.RULES`` what the schema requires of it. ``to_json`` walks the same way
back, so what ``parse_payload`` accepts, ``to_json`` returns equal (numbers equal in value).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NoReturn

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from scfed.catenax import _scalars as s
from scfed.catenax._model import CONSTRAINTS, MAX_TOTAL_ITEMS, MODELS, RULES, Rule
from scfed.errors import ImportRowError

#: The aspect model names a payload can be.
KINDS: tuple[str, ...] = tuple(MODELS)

_MAX_LISTED = 8
_At = tuple[str, str]  # the JSON path of a value and the property it belongs to


def parse_payload(kind: str, payload: object, *, source: str) -> Message:
    """The record of aspect model ``kind`` that ``payload`` (parsed JSON) is, fully checked.

    Raises ImportRowError naming ``source``, the JSON path, the field and the reason.
    """
    model = MODELS.get(kind)
    if model is None:
        raise ImportRowError(f"{source}: unknown aspect model {kind!r}; known: {', '.join(KINDS)}")
    record = model()
    _Reader(source).fill(record, payload, "$", "")
    return record


def to_json(message: Message) -> dict[str, object]:
    """The JSON payload a record came from: ints and floats equal in value to the original."""
    if type(message) not in MODELS.values():
        raise TypeError(f"{message.DESCRIPTOR.full_name} is not a Catena-X aspect model record")
    return _dump(message)


def detect_kind(payload: object) -> str:
    """The aspect model ``payload`` is, by its properties; ImportRowError says why if none."""
    if not isinstance(payload, dict):
        raise ImportRowError(f"$: a Catena-X payload is a JSON object, not {s.show(payload)}")
    # The top level settles it except where models share their top-level properties.
    top = [kind for kind in KINDS if _fits(MODELS[kind], payload, deep=False)]
    fits = top if len(top) < 2 else [k for k in top if _fits(MODELS[k], payload, deep=True)]
    if len(fits) == 1:
        return fits[0]
    if fits:
        raise ImportRowError(f"$: nothing in the payload tells apart {' and '.join(fits)}")
    if top:
        raise ImportRowError(
            f"$: the top level fits {' and '.join(top)}, but the nested objects fit none of them"
        )
    raise ImportRowError(f"$: not a Catena-X aspect model payload: {_nearest(payload)}")


# ---- reading ----


@dataclasses.dataclass
class _Reader:
    source: str
    budget: int = dataclasses.field(default_factory=lambda: MAX_TOTAL_ITEMS)

    def fail(self, path: str, field: str, reason: str) -> NoReturn:
        where = f"{path}: field {field!r}" if field else path
        raise ImportRowError(f"{self.source}: {where} {reason}")

    def fill(self, record: Any, value: object, path: str, field: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, field, f"must be an object, got {s.show(value)}")
        rules = RULES[type(record)]
        fields = {fd.json_name: fd for fd in record.DESCRIPTOR.fields}
        self.check_names(value, fields, rules, path)
        for name, item in value.items():
            fd = fields[name]
            self.set(record, fd, rules[fd.name], item, (f"{path}.{name}", name))
        for constraint in CONSTRAINTS.get(type(record), ()):
            problem = constraint(record)
            if problem is not None:
                self.fail(f"{path}.{problem[0]}", problem[0], problem[1])

    def check_names(
        self,
        value: Mapping[object, object],
        fields: Mapping[str, FieldDescriptor],
        rules: Mapping[str, Rule],
        path: str,
    ) -> None:
        unknown = [name for name in value if name not in fields]
        if unknown:
            listed = ", ".join(s.show(name) for name in unknown[:_MAX_LISTED])
            name = str(unknown[0])
            self.fail(
                f"{path}.{name}", name, f"is not a property of this object (unknown: {listed})"
            )
        for name, fd in fields.items():
            if rules[fd.name].required and name not in value:
                self.fail(f"{path}.{name}", name, "is missing (required)")

    def set(self, record: Any, fd: FieldDescriptor, rule: Rule, value: object, at: _At) -> None:
        if value is None:
            self.fail(*at, "must not be null (leave the property out instead)")
        if rule.array:
            self.set_array(record, fd, rule, value, at)
        elif rule.scalar is None:
            child = getattr(record, fd.name)
            child.SetInParent()
            self.fill(child, value, *at)
        else:
            setattr(record, fd.name, self.scalar(rule.scalar, value, at))

    def scalar(self, scalar: s.Scalar, value: object, at: _At) -> s.Stored:
        try:
            return scalar.parse(value)
        except s.Invalid as exc:
            self.fail(*at, str(exc))

    def set_array(
        self, record: Any, fd: FieldDescriptor, rule: Rule, value: object, at: _At
    ) -> None:
        if not isinstance(value, list):
            self.fail(*at, f"must be an array, got {s.show(value)}")
        self.check_size(len(value), rule, at)
        # An optional array lives in a message of its own, so that [] and absent differ.
        target = getattr(record, fd.name) if fd.is_repeated else _items(record, fd)
        seen: dict[object, int] = {}
        for index, item in enumerate(value):
            item_at = (f"{at[0]}[{index}]", at[1])
            if rule.scalar is not None:
                key: object = self.scalar(rule.scalar, item, item_at)
                target.append(key)
            else:
                child = target.add()
                self.fill(child, item, *item_at)
                key = _key(child, rule.key)
            if key in seen:
                self.fail(*item_at, _repeat(seen[key], rule.key))
            seen[key] = index

    def check_size(self, size: int, rule: Rule, at: _At) -> None:
        if size > rule.max_items:
            self.fail(*at, f"has {size} items, at most {rule.max_items} allowed")
        if size < rule.min_items:
            self.fail(*at, f"has {size} items, at least {rule.min_items} needed")
        self.budget -= size
        if self.budget < 0:
            self.fail(*at, f"brings the payload above {MAX_TOTAL_ITEMS} array items in all")


def _items(record: Any, fd: FieldDescriptor) -> Any:
    holder = getattr(record, fd.name)
    holder.SetInParent()
    return holder.items


def _key(item: Message, names: tuple[str, ...]) -> object:
    if not names:
        return item.SerializeToString(deterministic=True)  # values are canonical: equal JSON
    return tuple(_lookup(item, name) for name in names)


def _lookup(item: Any, dotted: str) -> object:
    for name in dotted.split("."):
        fd = next(fd for fd in item.DESCRIPTOR.fields if fd.json_name == name)
        item = getattr(item, fd.name)
    return item


def _repeat(first: int, names: tuple[str, ...]) -> str:
    if not names:
        return f"repeats item {first} (items must be unique)"
    return f"repeats the {' and '.join(names)} of item {first} (they must be unique)"


# ---- writing ----


def _dump(record: Any) -> dict[str, object]:
    rules = RULES[type(record)]
    out: dict[str, object] = {}
    for fd in record.DESCRIPTOR.fields:
        rule = rules[fd.name]
        if fd.has_presence and not record.HasField(fd.name):
            continue
        value = getattr(record, fd.name)
        if rule.array:
            items = value if fd.is_repeated else value.items
            out[fd.json_name] = [_dump_one(rule, item) for item in items]
        else:
            out[fd.json_name] = _dump_one(rule, value)
    return out


def _dump_one(rule: Rule, value: Any) -> object:
    return _dump(value) if rule.scalar is None else rule.scalar.dump(value)


# ---- recognising ----


def _fits(model: type[Message], value: Mapping[object, object], *, deep: bool) -> bool:
    """Whether ``value`` has the required and only the allowed properties of ``model``."""
    rules = RULES[model]
    descriptor: Any = model.DESCRIPTOR  # typed as a union of two implementations' classes
    fields = {fd.json_name: fd for fd in descriptor.fields}
    if any(name not in fields for name in value):
        return False
    if any(rules[fd.name].required and name not in value for name, fd in fields.items()):
        return False
    return not deep or all(_fits_nested(fields[str(name)], item) for name, item in value.items())


def _fits_nested(fd: FieldDescriptor, value: object) -> bool:
    child = fd.message_type
    if child is not None and not fd.is_repeated and child.fields_by_name.keys() == {"items"}:
        child = child.fields_by_name["items"].message_type  # an optional array's holder
    if child is None:
        return True
    model = GetMessageClass(child)
    values = value if isinstance(value, list) else [value]
    return all(isinstance(item, dict) and _fits(model, item, deep=True) for item in values)


def _nearest(payload: Mapping[object, object]) -> str:
    """Which model the payload comes closest to, and what it lacks or has too many of."""

    def score(kind: str) -> tuple[int, int]:
        missing, unknown = _differences(kind, payload)
        return (-len(missing) - len(unknown), -len(missing))

    best = max(KINDS, key=score)
    missing, unknown = _differences(best, payload)
    if len(missing) == len(_differences(best, {})[0]):
        names = ", ".join(s.show(name) for name in list(payload)[:_MAX_LISTED]) or "none"
        return f"its properties ({names}) match none of {', '.join(KINDS)}"
    needs = f", which needs {', '.join(missing)}" if missing else ""
    extra = ", ".join(s.show(name) for name in unknown[:_MAX_LISTED])
    allows = f"{' and' if needs else ', which'} does not allow {extra}" if unknown else ""
    return f"closest is {best}{needs}{allows}"


def _differences(kind: str, payload: Mapping[object, object]) -> tuple[list[str], list[object]]:
    descriptor = MODELS[kind].DESCRIPTOR
    rules = RULES[MODELS[kind]]
    fields = {fd.json_name: fd for fd in descriptor.fields}
    missing = [n for n, fd in fields.items() if rules[fd.name].required and n not in payload]
    unknown = [name for name in payload if name not in fields]
    return missing, unknown
