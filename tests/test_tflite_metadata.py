"""The Python stand-in for MediaPipe's missing compiled helper: the minimum metadata parser version, from the
version history in the metadata_schema.fbs that MediaPipe ships (the export tests write and read real files)."""

from __future__ import annotations

import flatbuffers
import pytest
from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

from core.tflite_metadata import ModelCard, _metadata_buffer, minimum_parser_version


def packed(model: fb.ModelMetadataT) -> bytes:
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"M001")
    return bytes(builder.Output())


def one_subgraph(**fields) -> fb.ModelMetadataT:
    subgraph = fb.SubGraphMetadataT()
    for name, value in fields.items():
        setattr(subgraph, name, value)
    model = fb.ModelMetadataT()
    model.subgraphMetadata = [subgraph]
    return model


def associated(kind: int, version: str | None = None) -> fb.AssociatedFileT:
    file = fb.AssociatedFileT()
    file.name, file.type, file.version = "x.txt", kind, version
    return file


def tensor_with(**fields) -> fb.TensorMetadataT:
    tensor = fb.TensorMetadataT()
    for name, value in fields.items():
        setattr(tensor, name, value)
    return tensor


def process_unit(kind: int, options) -> fb.ProcessUnitT:
    unit = fb.ProcessUnitT()
    unit.optionsType, unit.options = kind, options
    return unit


def audio_content() -> fb.ContentT:
    content = fb.ContentT()
    content.contentPropertiesType = fb.ContentProperties.AudioProperties
    content.contentProperties = fb.AudioPropertiesT()
    return content


@pytest.mark.parametrize(
    "model, version",
    [
        (one_subgraph(), "1.0.0"),
        (one_subgraph(associatedFiles=[associated(fb.AssociatedFileType.TENSOR_AXIS_LABELS)]), "1.0.0"),
        (one_subgraph(associatedFiles=[associated(fb.AssociatedFileType.VOCABULARY)]), "1.0.1"),
        (one_subgraph(inputProcessUnits=[process_unit(1, fb.NormalizationOptionsT())]), "1.1.0"),
        (
            one_subgraph(
                inputTensorMetadata=[
                    tensor_with(
                        processUnits=[
                            process_unit(fb.ProcessUnitOptions.RegexTokenizerOptions, fb.RegexTokenizerOptionsT())
                        ]
                    )
                ]
            ),
            "1.2.1",
        ),
        (one_subgraph(outputTensorGroups=[fb.TensorGroupT()]), "1.2.0"),
        (one_subgraph(inputTensorMetadata=[tensor_with(content=audio_content())]), "1.3.0"),
        (one_subgraph(associatedFiles=[associated(fb.AssociatedFileType.SCANN_INDEX_FILE)]), "1.4.0"),
        (one_subgraph(associatedFiles=[associated(fb.AssociatedFileType.DESCRIPTIONS, "2")]), "1.4.1"),
        (one_subgraph(customMetadata=[fb.CustomMetadataT()]), "1.5.0"),
    ],
)
def test_minimum_parser_version_follows_the_schema_history(model, version):
    assert minimum_parser_version(packed(model)) == version


def test_the_studios_own_metadata_needs_parser_1_0_0():
    card = ModelCard("n", "d", "v", "CNN Studio", "RGB image", False, "probabilities", True, ["a", "b"])
    assert minimum_parser_version(_metadata_buffer(card)) == "1.0.0"
