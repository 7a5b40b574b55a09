"""One dataclass tree for a whole project (data, augmentation, model, training) that round-trips to JSON.

Field paths such as ``"data.image_size"`` are also the Streamlit widget keys, so a page can seed every
widget from a config and write the widgets back into it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from core.errors import StudioError

BUILTIN_SOURCES = ("builtin:shapes", "builtin:digits")
KERAS_SOURCES = ("keras:mnist", "keras:fashion_mnist", "keras:cifar10", "keras:cifar100")
USER_SOURCES = ("zip", "folder", "images")
SOURCES = BUILTIN_SOURCES + KERAS_SOURCES + USER_SOURCES
COLOR_MODES = ("auto", "rgb", "grayscale")
FLIP_MODES = ("none", "horizontal", "vertical", "horizontal_and_vertical")

MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 512


@dataclass
class DataConfig:
    """Where the images come from and how they are shaped and split."""

    source: str = "builtin:shapes"
    # File or folder for the "zip" and "folder" sources (the uploaded file's name in the app).
    path: str = ""
    # Square side in pixels; 0 means the source's own default (see core.data.default_image_size).
    image_size: int = 0
    color_mode: str = "auto"
    shapes_count: int = 1800
    val_split: float = 0.15
    test_split: float = 0.15
    # Keras sets ship a train/test split; keep their test images as the test split.
    use_official_test: bool = True
    seed: int = 42

    def validate(self) -> None:
        _choice("data.source", self.source, SOURCES)
        _choice("data.color_mode", self.color_mode, COLOR_MODES)
        if self.image_size and not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            raise StudioError(
                f"data.image_size is {self.image_size}: pick a size from {MIN_IMAGE_SIZE} to "
                f"{MAX_IMAGE_SIZE} pixels, or 0 for the source's default."
            )
        if not 20 <= self.shapes_count <= 200_000:
            raise StudioError(f"data.shapes_count is {self.shapes_count}: pick 20 to 200000 images.")
        for name, value in (("data.val_split", self.val_split), ("data.test_split", self.test_split)):
            if not 0.0 <= value <= 0.5:
                raise StudioError(f"{name} is {value}: pick a fraction from 0 to 0.5.")
        if self.val_split + self.test_split >= 0.9:
            raise StudioError(
                f"data.val_split {self.val_split} + data.test_split {self.test_split} leave under 10% "
                "of the images for training: lower one of them."
            )
        if self.source in ("zip", "folder") and not self.path:
            raise StudioError(f"data.path is empty: the '{self.source}' source needs a {self.source} path.")


@dataclass
class AugmentConfig:
    """Random augmentation applied to training batches only (never at inference)."""

    flip: str = "none"
    rotation: float = 0.0  # degrees, both directions
    zoom: float = 0.0  # fraction, in and out
    translation: float = 0.0  # fraction of the image side
    contrast: float = 0.0  # factor, 0 = off

    def validate(self) -> None:
        _choice("augment.flip", self.flip, FLIP_MODES)
        for name, value, high in (
            ("augment.rotation", self.rotation, 180.0),
            ("augment.zoom", self.zoom, 0.9),
            ("augment.translation", self.translation, 0.5),
            ("augment.contrast", self.contrast, 1.0),
        ):
            if not 0.0 <= value <= high:
                raise StudioError(f"{name} is {value}: pick a value from 0 to {high}.")

    @property
    def active(self) -> bool:
        return self.flip != "none" or any((self.rotation, self.zoom, self.translation, self.contrast))


@dataclass
class StudioConfig:
    """The whole project: every page reads and writes this one object."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> StudioConfig:
        for section in dataclasses.fields(self):
            getattr(self, section.name).validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> StudioConfig:
        return _build(cls, data, "config").validate()

    @classmethod
    def from_json(cls, text: str | bytes) -> StudioConfig:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise StudioError(
                f"The config file is not valid JSON ({err}). Download a config from the app to see the format."
            ) from None
        return cls.from_dict(data)


def get_field(config: StudioConfig, path: str) -> Any:
    """Value at a dotted path such as ``"data.image_size"``."""
    obj: Any = config
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def set_field(config: StudioConfig, path: str, value: Any) -> None:
    """Set the value at a dotted path; the type is checked as when loading JSON."""
    *parents, last = path.split(".")
    obj: Any = config
    for part in parents:
        obj = getattr(obj, part)
    hints = typing.get_type_hints(type(obj))
    setattr(obj, last, _coerce(hints[last], value, path))


def field_paths(config: StudioConfig) -> list[str]:
    """Every leaf field's dotted path, e.g. for seeding widgets."""
    paths = []
    for section in dataclasses.fields(config):
        for leaf in dataclasses.fields(getattr(config, section.name)):
            paths.append(f"{section.name}.{leaf.name}")
    return paths


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise StudioError(f"{name} is '{value}': choose one of {', '.join(allowed)}.")


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise StudioError(f"{path} must be a JSON object, not {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise StudioError(f"Unknown config field '{path}.{unknown[0]}'. Fields of {path}: {', '.join(sorted(known))}.")
    kwargs = {}
    for name in known & set(data):
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, data[name], f"{path}.{name}")
        else:
            kwargs[name] = _coerce(hint, data[name], f"{path}.{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """Check a JSON value against a field's type; ints are accepted where floats are expected."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(option, value, path)
            except StudioError:
                continue
        raise StudioError(f"{path} has the value {value!r}, which is not a {hint}.")
    if origin is list:
        if not isinstance(value, list):
            raise StudioError(f"{path} must be a list, not {value!r}.")
        (item,) = typing.get_args(hint)
        return [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if hint is type(None):
        if value is None:
            return None
        raise StudioError(f"{path} must be null, not {value!r}.")
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise StudioError(f"{path} must be a {hint.__name__}, not {value!r}.")
