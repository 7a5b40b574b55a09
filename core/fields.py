"""Config field metadata: each field is declared once, with its default, range or choices, unit, label and help.

A config dataclass declares a field as ``image_size: int = setting(0, N_("Image size"), N_("…"), low=8, high=512)``:
the label, help, unit and item texts are message ids (marked with ``N_`` for the catalog), looked up in the
reader's language where they are shown.
From those declarations come the checks (:func:`check`), the page widgets (``ui.fields``), the CLI flags
(``core.__main__``) and the README's settings table (:func:`markdown_table`), so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import StudioError
from core.i18n import _, using

SPEC_KEY = "cnn_studio_spec"
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


@dataclass(frozen=True)
class Spec:
    """How a person sees one field, and what values it takes."""

    label: str
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the low end itself is not allowed (a learning rate above 0)
    zero: str = ""  # what 0 means when 0 is allowed below ``low`` (e.g. "the source's default")
    choices: tuple = ()
    names: Mapping[Any, str] | None = None  # a person's name for each choice
    unit: str = ""
    step: float | None = None  # slider and number-input step
    options: tuple = ()  # suggested values for a select slider (the current value is always offered too)
    item: str = ""  # list fields: the label of item i, e.g. "Filters, block {i}"
    widget: str = ""  # force a widget: "select", "radio", "select_slider", "slider", "number", "text"
    aliases: tuple[str, ...] = ()  # extra CLI flags besides --section.field, e.g. ("--epochs",)
    group: str = ""  # the block of a page that draws it (see ui.state.field_group); "" for none
    when: Mapping[str, tuple] | None = None  # shown only while these other fields hold one of these values
    count: str = ""  # list fields: the field that says how many items are in use (the rest are kept)


def shown(info: FieldInfo, values: Mapping[str, Any]) -> bool:
    """Whether a field is in use given the other fields' values (its spec's ``when``)."""
    return all(values[path] in allowed for path, allowed in (info.spec.when or {}).items())


def setting(default: Any, label: str, help: str, **spec: Any) -> Any:
    """A dataclass field with its default and its :class:`Spec`."""
    metadata = {SPEC_KEY: Spec(label, help, **spec)}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class FieldInfo:
    """One leaf field of the config tree: its dotted path, Python type, default and spec."""

    path: str
    kind: type  # bool, int, float, str or list
    item_kind: type | None  # the item type of a list field
    default: Any
    spec: Spec

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def flag(self) -> str:
        return f"--{self.path}"

    def label(self) -> str:
        """The field's label in the current language."""
        return _(self.spec.label)

    def help(self) -> str:
        """The field's help (one sentence) in the current language."""
        return _(self.spec.help)

    def range_text(self) -> str:
        """``8–512 pixels (0: the source's default)``, ``one of: a, b``, ``true or false``… in the current language."""
        spec = self.spec
        if spec.choices:
            return _("one of: {choices}").format(choices=", ".join(str(c) for c in spec.choices))
        if self.kind is bool:
            return _("true or false")
        if spec.low is None and spec.high is None:
            return _("text")
        low, high = number_text(spec.low), number_text(spec.high)
        unit = _(spec.unit) if spec.unit else ""
        if spec.low_open:
            text = _("above {low}, at most {high} {unit}").format(low=low, high=high, unit=unit)
        else:
            text = _("{low}–{high} {unit}").format(low=low, high=high, unit=unit)
        text = text.strip()
        if self.kind is list:
            text = _("{count} numbers, each {range}").format(count=len(self.default), range=text)
        if spec.zero:
            text = _("{range} (0: {zero})").format(range=text, zero=_(spec.zero))
        return text

    def value_text(self, value: Any) -> str:
        """A value as the command line writes it (what :func:`parse_text` reads back)."""
        if self.kind is list:
            return ",".join(str(v) for v in value)
        if self.kind is bool:
            return str(value).lower()
        return str(value)

    def default_text(self) -> str:
        return self.value_text(self.default) if self.default != "" else '""'


def collect(root: type) -> dict[str, FieldInfo]:
    """Every leaf field of a two-level config dataclass (sections of fields), keyed by dotted path."""
    fields: dict[str, FieldInfo] = {}
    for section in dataclasses.fields(root):
        section_type = typing.get_type_hints(root)[section.name]
        hints = typing.get_type_hints(section_type)
        for leaf in dataclasses.fields(section_type):
            spec = leaf.metadata.get(SPEC_KEY)
            if spec is None:
                raise TypeError(f"{section.name}.{leaf.name} has no setting(...): declare its label and help")
            hint = hints[leaf.name]
            kind = typing.get_origin(hint) or hint
            item = typing.get_args(hint)[0] if kind is list else None
            default = leaf.default_factory() if leaf.default is dataclasses.MISSING else leaf.default
            fields[f"{section.name}.{leaf.name}"] = FieldInfo(f"{section.name}.{leaf.name}", kind, item, default, spec)
    return fields


def check(info: FieldInfo, value: Any) -> None:
    """Raise StudioError naming the field, the value and what is allowed."""
    spec = info.spec
    if spec.choices:
        if value not in spec.choices:
            shown = f"'{value}'" if isinstance(value, str) else str(value)
            choices = ", ".join(str(c) for c in spec.choices)
            raise StudioError(
                _("{field} is {value}: choose one of {choices}.").format(field=info.path, value=shown, choices=choices)
            )
        return
    if spec.low is None or info.kind in (bool, str):
        return
    if info.kind is list:
        if len(value) != len(info.default):
            raise StudioError(
                _("{field} needs {count} numbers (unused ones are kept for the sliders); got {given}.").format(
                    field=info.path, count=len(info.default), given=len(value)
                )
            )
        for i, item in enumerate(value):
            _check_number(f"{info.path}.{i}", item, info)
        return
    _check_number(info.path, value, info)


def _check_number(where: str, value: float, info: FieldInfo) -> None:
    spec = info.spec
    if spec.zero and value == 0:
        return
    below = value <= spec.low if spec.low_open else value < spec.low
    if below or value > spec.high:
        whole = (info.item_kind or info.kind) is int
        low, high = number_text(spec.low), number_text(spec.high)
        if spec.zero:
            message = _("{field} is {value}: pick a whole number from {low} to {high} {unit}, or 0 for {zero}.")
        elif spec.low_open:
            message = _("{field} is {value}: pick a value above {low} and at most {high} {unit}.")
        elif whole:
            message = _("{field} is {value}: pick a whole number from {low} to {high} {unit}.")
        else:
            message = _("{field} is {value}: pick a value from {low} to {high} {unit}.")
        unit = _(spec.unit) if spec.unit else ""
        text = message.format(field=where, value=value, low=low, high=high, unit=unit, zero=_(spec.zero))
        raise StudioError(" ".join(text.split()).replace(" .", ".").replace(" ,", ","))


def parse_text(info: FieldInfo, text: str, current: Any, flag: str | None = None) -> Any:
    """A field's value from command-line text: numbers, true/false, or comma-separated numbers for lists
    (a shorter list changes the first items and keeps the rest)."""
    flag = flag or info.flag
    text = text.strip()
    if info.kind is list:
        parts = [p for p in text.split(",") if p.strip()]
        if not parts or len(parts) > len(info.default):
            raise StudioError(
                _("{flag} '{text}': give 1 to {count} comma-separated numbers, e.g. {example}.").format(
                    flag=flag, text=text, count=len(info.default), example=info.default_text()
                )
            )
        values = [_parse_scalar(info.item_kind, p, flag, info) for p in parts]
        return values + list(current)[len(values) :]
    return _parse_scalar(info.kind, text, flag, info)


def _parse_scalar(kind: type, text: str, flag: str, info: FieldInfo) -> Any:
    text = text.strip()
    if kind is bool:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise StudioError(_("{flag} '{text}' is not true or false: write true or false.").format(flag=flag, text=text))
    if kind is str:
        return text
    try:
        if kind is int:
            return int(text)
        return float(text)
    except ValueError:
        if kind is int:
            message = _("{flag} '{text}' is not a whole number: give e.g. {example}.")
        else:
            message = _("{flag} '{text}' is not a number: give e.g. {example}.")
        raise StudioError(message.format(flag=flag, text=text, example=info.default_text())) from None


def number_text(value: float) -> str:
    """``512``, ``0.05``, ``2147483647``: whole numbers without exponent."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def markdown_table(fields: Mapping[str, FieldInfo], lang: str = "en") -> str:
    """The README's settings table in a language: one row per field, all from the declarations."""
    with using(lang):
        rows = [
            "| {} | {} | {} | {} |".format(_("field"), _("what it is"), _("default"), _("allowed")),
            "| --- | --- | --- | --- |",
        ]
        for info in fields.values():
            what = _("{label}: {help}").format(label=info.label(), help=info.help()).replace("|", "\\|")
            rows.append(f"| `{info.path}` | {what} | `{info.default_text()}` | {info.range_text()} |")
    return "\n".join(rows)
