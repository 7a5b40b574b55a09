"""The config tree round-trips to JSON, and bad files name the field."""

import pytest

from core.config import StudioConfig, field_paths, get_field, set_field
from core.errors import StudioError


def test_round_trip_is_identical():
    config = StudioConfig()
    config.data.source = "builtin:digits"
    config.data.image_size = 20
    config.augment.rotation = 15.0
    again = StudioConfig.from_json(config.to_json())
    assert again == config and again.to_json() == config.to_json()


def test_every_field_path_reads_and_writes():
    config = StudioConfig()
    for path in field_paths(config):
        set_field(config, path, get_field(config, path))
    assert "data.image_size" in field_paths(config) and "augment.flip" in field_paths(config)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"data": {"sauce": "x"}}', r"Unknown config field 'config.data.sauce'"),
        ('{"data": {"image_size": "big"}}', r"config.data.image_size must be a int, not 'big'"),
        ('{"data": {"source": "keras:imagenet"}}', r"data.source is 'keras:imagenet': choose one of"),
        (
            '{"data": {"image_size": 4}}',
            r"data.image_size is 4: pick a whole number from 8 to 512 pixels, or 0 for the source's default",
        ),
        ('{"augment": {"rotation": 400}}', r"augment.rotation is 400.0: pick a value from 0 to 180"),
        ('{"data": {"val_split": 0.5, "test_split": 0.45}}', r"leave under 10% of the images for training"),
        ("[1, 2]", r"config must be a JSON object, not list"),
        ("{not json", r"The config file is not valid JSON"),
    ],
)
def test_bad_configs_name_the_field_and_value(text, message):
    with pytest.raises(StudioError, match=message):
        StudioConfig.from_json(text)
