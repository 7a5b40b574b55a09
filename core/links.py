"""A session's config and chosen run as a link's query parameters, and back.

A link carries only the fields that differ from the defaults, each as the command line writes it
(``?training.epochs=10&model.filters=16,32,64&run=20260101-…``), so a reload or a link a presenter sends opens
the same dataset, model and run. An uploaded dataset is not in a link: its files live in the sender's session.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.config import FIELDS, StudioConfig, apply_recipe, default_config, get_field, set_field
from core.errors import StudioError
from core.fields import check, parse_text
from core.i18n import _

RUN_PARAM = "run"
PRESET_PATH = "model.preset"
UPLOADED_SOURCES = ("zip", "images")  # files of the sender's session; a link cannot carry them
MAX_VALUE_CHARS = 300  # a field's text in a link; longer is not a value someone chose with a widget


def link_params(config: StudioConfig, run_id: str | None = None) -> dict[str, str]:
    """The query parameters of a link to this config (and run): each field that differs from its default."""
    params: dict[str, str] = {}
    defaults = default_config()  # with another preset, its recipe's values: those come back with the preset
    if config.model.preset not in ("custom", defaults.model.preset):
        apply_recipe(defaults, config.model.preset)
    uploaded = config.data.source in UPLOADED_SOURCES
    for path, info in FIELDS.items():
        if uploaded and path in ("data.source", "data.path"):
            continue
        value = get_field(config, path)
        if value != get_field(defaults, path) or path == PRESET_PATH and value != default_config().model.preset:
            params[path] = info.value_text(value)
    if run_id:
        params[RUN_PARAM] = run_id
    return params


def config_from_link(params: Mapping[str, str]) -> tuple[StudioConfig, list[str]]:
    """The config a link describes, and a message for each parameter it had to leave out (not a setting, or a
    value that setting does not take). The preset comes first, so that the link's other fields change it, as the
    sliders do after a preset is chosen."""
    config, problems = default_config(), []
    fields = [(path, str(text)) for path, text in params.items() if path != RUN_PARAM]
    fields.sort(key=lambda item: item[0] != PRESET_PATH)
    for path, text in fields:
        info = FIELDS.get(path)
        if info is None:
            continue  # another app's or tool's parameter: not ours to judge
        try:
            if len(text) > MAX_VALUE_CHARS:
                raise StudioError(
                    _("{field} has {count} characters: a setting's value has a few.").format(
                        field=path, count=len(text)
                    )
                )
            value = parse_text(info, text, get_field(config, path), flag=path)
            check(info, value)
            if path == PRESET_PATH and value != "custom":
                apply_recipe(config, value)
            set_field(config, path, value)
        except StudioError as err:
            problems.append(
                _("The link's {setting} was left out: {reason}").format(setting=f"{path}={text[:40]}", reason=err)
            )
    try:
        config.validate()
    except StudioError as err:  # fields fine one by one but not together: the defaults, and why
        return default_config(), [*problems, _("The link's settings were left out: {reason}").format(reason=err)]
    return config, problems
