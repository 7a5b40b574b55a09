"""TFLite model metadata (the schema MediaPipe Tasks, ML Kit and LiteRT tools read), written into a .tflite file.

What goes in: the model's name, description, version and author; the input image's colour space, value range
and normalization options (mean 0, std 1: the model takes raw 0..255 pixels and normalizes them itself); the
output's meaning and the labels file associated with its class axis, packed into the file. MediaPipe's
``ImageClassifier`` then loads the file as it is and names its categories.

It is written with MediaPipe's own populator (``mediapipe.tasks.python.metadata``). The ``mediapipe`` wheel
ships that module without its compiled helper ``_pywrap_metadata_version``, which computes the metadata's
minimum parser version; :func:`_install_version_helper` provides it in Python, from the version history in
the schema MediaPipe ships (``metadata_schema.fbs``): the largest "Added in" version among the fields used.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import types
import zipfile
from dataclasses import dataclass

LABELS_FILE = "labels.txt"
_HELPER = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


@dataclass(frozen=True)
class ModelCard:
    """The metadata of one .tflite classifier."""

    name: str
    description: str
    version: str
    author: str
    input_description: str
    grayscale: bool  # the input's colour space: GRAYSCALE (1 channel) or RGB
    output_description: str
    probabilities: bool  # False: logits (the stats say 0..1 only for probabilities)
    labels: list[str]
    input_name: str = "pixels"
    output_name: str = "probabilities"


def _walk(value):
    """Every flatbuffer object (``...T``) reachable from ``value``, ``value`` first."""
    if isinstance(value, list):
        for item in value:
            yield from _walk(item)
    elif hasattr(value, "__dict__") and type(value).__name__.endswith("T"):
        yield value
        for field in vars(value).values():
            yield from _walk(field)


def minimum_parser_version(metadata_buffer: bytes) -> str:
    """The smallest metadata parser version that understands every field of ``metadata_buffer``, from the
    history in metadata_schema.fbs (1.0.1 VOCABULARY files … 1.5.0 custom metadata)."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    metadata = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(metadata_buffer, 0))
    needed = [(1, 0, 0)]
    for item in _walk(metadata):
        kind = type(item).__name__
        if kind == "AssociatedFileT":
            if item.type == fb.AssociatedFileType.VOCABULARY:
                needed.append((1, 0, 1))
            if item.type == fb.AssociatedFileType.SCANN_INDEX_FILE:
                needed.append((1, 4, 0))
            if item.version is not None:
                needed.append((1, 4, 1))
        elif kind == "SubGraphMetadataT":
            if item.inputProcessUnits or item.outputProcessUnits:
                needed.append((1, 1, 0))
            if item.inputTensorGroups or item.outputTensorGroups:
                needed.append((1, 2, 0))
            if item.customMetadata:
                needed.append((1, 5, 0))
        elif kind == "ProcessUnitT":
            options = fb.ProcessUnitOptions
            if item.optionsType in (options.BertTokenizerOptions, options.SentencePieceTokenizerOptions):
                needed.append((1, 1, 0))
            if item.optionsType == options.RegexTokenizerOptions:
                needed.append((1, 2, 1))
        elif kind == "ContentT" and item.contentPropertiesType == fb.ContentProperties.AudioProperties:
            needed.append((1, 3, 0))
    return ".".join(map(str, max(needed)))


def _install_version_helper() -> None:
    """Provide the compiled helper the mediapipe wheel lacks (a no-op where it exists)."""
    try:
        importlib.import_module(_HELPER)
        return
    except ImportError:
        pass
    parts = _HELPER.split(".")
    for i in range(3, len(parts)):  # mediapipe.tasks.cc, .metadata, .python: empty packages
        name = ".".join(parts[:i])
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = []
            sys.modules[name] = package
    helper = types.ModuleType(_HELPER)
    helper.GetMinimumMetadataParserVersion = minimum_parser_version
    sys.modules[_HELPER] = helper
    setattr(sys.modules[".".join(parts[:-1])], parts[-1], helper)


def _metadata_buffer(card: ModelCard) -> bytes:
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    image = fb.ImagePropertiesT()
    image.colorSpace = fb.ColorSpaceType.GRAYSCALE if card.grayscale else fb.ColorSpaceType.RGB
    normalization = fb.ProcessUnitT()
    normalization.optionsType = fb.ProcessUnitOptions.NormalizationOptions
    normalization.options = fb.NormalizationOptionsT()
    normalization.options.mean, normalization.options.std = [0.0], [1.0]
    pixels = fb.TensorMetadataT()
    pixels.name, pixels.description = card.input_name, card.input_description
    pixels.content = fb.ContentT()
    pixels.content.contentPropertiesType = fb.ContentProperties.ImageProperties
    pixels.content.contentProperties = image
    pixels.processUnits = [normalization]
    pixels.stats = fb.StatsT()
    pixels.stats.min, pixels.stats.max = [0.0], [255.0]

    labels = fb.AssociatedFileT()
    labels.name, labels.type = LABELS_FILE, fb.AssociatedFileType.TENSOR_AXIS_LABELS
    labels.description = "The class names, one a line, in the order of the output's class axis."
    scores = fb.TensorMetadataT()
    scores.name, scores.description = card.output_name, card.output_description
    scores.content = fb.ContentT()
    scores.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
    scores.content.contentProperties = fb.FeaturePropertiesT()
    scores.associatedFiles = [labels]
    if card.probabilities:
        scores.stats = fb.StatsT()
        scores.stats.min, scores.stats.max = [0.0], [1.0]

    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [pixels], [scores]
    model = fb.ModelMetadataT()
    model.name, model.description, model.version, model.author = card.name, card.description, card.version, card.author
    model.subgraphMetadata = [subgraph]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"M001")
    return bytes(builder.Output())


def with_metadata(model: bytes, card: ModelCard) -> bytes:
    """``model`` (a .tflite file's bytes) with ``card`` as its metadata and the labels file packed in."""
    _install_version_helper()
    from mediapipe.tasks.python.metadata import metadata

    populator = metadata.MetadataPopulator.with_model_buffer(bytearray(model))
    populator.load_metadata_buffer(_metadata_buffer(card))
    populator.load_associated_file_buffers({LABELS_FILE: "\n".join(card.labels).encode()})
    populator.populate()
    result = bytes(populator.get_model_buffer())
    del populator  # removes its temporary file now, not at interpreter exit (where its __del__ fails)
    return result


def read_metadata(model: bytes) -> tuple[dict, dict[str, bytes]]:
    """The metadata of a .tflite file as JSON data, and the files packed in it (name → bytes)."""
    _install_version_helper()
    from mediapipe.tasks.python.metadata import metadata

    shown = metadata.MetadataDisplayer.with_model_buffer(bytearray(model))
    with zipfile.ZipFile(io.BytesIO(model)) as packed:
        files = {name: packed.read(name) for name in packed.namelist()}
    return json.loads(shown.get_metadata_json()), files
