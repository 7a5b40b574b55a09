"""CNN Studio's command line: the same core the app uses, with no UI.

    python -m core train --data builtin:digits --preset mnist --epochs 2
    python -m core train --data photos.zip --image-size 64 --workspace runs
    python -m core evaluate --run runs/20261122-101500-mnist-digits-1a2b
    python -m core export --run runs/20261122-101500-mnist-digits-1a2b --formats tfjs,tflite,tflite-int8

The last line on stdout is one JSON object; progress goes to stderr. Bad input exits with status 2 and a
one-line message; a run that fails exits with status 1 (its JSON says why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.config import KERAS_SOURCES, StudioConfig
from core.errors import StudioError

EXIT_FAILED_RUN = 1
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="CNN Studio from the command line: train image classifiers headless.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train a model and keep the run in the workspace",
        description="Train a model headless, with a text progress bar on stderr and a JSON summary on stdout.",
    )
    train.add_argument(
        "--data",
        required=True,
        metavar="SOURCE",
        help="builtin:digits, builtin:shapes, "
        + ", ".join(KERAS_SOURCES)
        + ", a folder with one subfolder per class, or a ZIP of such folders",
    )
    model = train.add_mutually_exclusive_group()
    model.add_argument(
        "--preset",
        metavar="ID",
        help="model preset id (tutorial-cifar, cifar-bn, mnist, small-64, "
        "resnet-small, mobilenetv2-transfer); default: the config's, else tutorial-cifar",
    )
    model.add_argument("--config", metavar="FILE", type=Path, help="a config JSON downloaded from the app")
    train.add_argument("--epochs", type=int, metavar="N")
    train.add_argument("--batch-size", type=int, metavar="N")
    train.add_argument("--image-size", type=int, metavar="N", help="square side in pixels (default: the source's)")
    colour = train.add_mutually_exclusive_group()
    colour.add_argument("--grayscale", action="store_true", help="one channel")
    colour.add_argument("--rgb", action="store_true", help="three channels")
    train.add_argument("--val-split", type=float, metavar="F", help="validation fraction, 0 to 0.5")
    train.add_argument("--test-split", type=float, metavar="F", help="test fraction, 0 to 0.5")
    train.add_argument("--seed", type=int, metavar="N")
    train.add_argument("--learning-rate", type=float, metavar="F")
    train.add_argument(
        "--workspace", metavar="DIR", help="where runs are kept (default: $CNN_STUDIO_WORKSPACE or ./runs)"
    )
    train.add_argument("--name", help="a name for the run in the history")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate = commands.add_parser(
        "evaluate",
        help="score a run on its held-out test split",
        description="Print one JSON object: accuracy, loss, top-3 accuracy, confusion matrix, per-class metrics.",
    )
    evaluate.add_argument("--run", required=True, metavar="RUN_DIR", help="a run folder, or a run id in the workspace")
    evaluate.add_argument("--workspace", metavar="DIR", help="where to look up a run id")
    evaluate.add_argument("--report", metavar="FILE", type=Path, help="also write the standalone HTML report here")
    export = commands.add_parser(
        "export",
        help="export a run for TF.js, TFLite and more, measured against Keras",
        description="Write the formats into RUN_DIR/exports (reusing earlier exports of the same model) and print "
        "one JSON object: per format its path, size in bytes, test accuracy and max abs difference.",
    )
    export.add_argument("--run", required=True, metavar="RUN_DIR", help="a run folder, or a run id in the workspace")
    export.add_argument("--workspace", metavar="DIR", help="where to look up a run id")
    export.add_argument(
        "--formats",
        default="all",
        metavar="LIST",
        help="comma-separated: keras,savedmodel,tfjs,tflite,tflite-fp16,tflite-dynamic,tflite-int8,"
        "tflite-int8-io,webdemo (default: all)",
    )
    export.add_argument("--no-compare", action="store_true", help="skip running each format on the test split")
    return parser


def config_from_args(args: argparse.Namespace) -> StudioConfig:
    """The run's config: the file (or defaults), then the preset, then each flag given."""
    from core.config import apply_preset

    if args.config:
        try:
            config = StudioConfig.from_json(args.config.read_bytes())
        except OSError as err:
            raise StudioError(f"Cannot read --config {args.config}: {err.strerror}.") from None
    else:
        config = StudioConfig()
    source = args.data
    if source.startswith(("builtin:", "keras:")):
        config.data.source, config.data.path = source, ""
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            config.data.source, config.data.path = "folder", str(path)
        elif path.suffix.lower() == ".zip":
            if not path.is_file():
                raise StudioError(f"--data {source}: no such ZIP file. Check the path.")
            config.data.source, config.data.path = "zip", str(path)
        else:
            raise StudioError(
                f"--data {source} is not a dataset: use builtin:digits, builtin:shapes, keras:mnist, "
                "keras:fashion_mnist, keras:cifar10, keras:cifar100, a folder of class folders or a .zip of them."
            )
    if args.preset:
        config.model = apply_preset(args.preset, config.model)
    for flag, path in (
        ("epochs", "training.epochs"),
        ("batch_size", "training.batch_size"),
        ("image_size", "data.image_size"),
        ("val_split", "data.val_split"),
        ("test_split", "data.test_split"),
        ("seed", "data.seed"),
        ("learning_rate", "training.learning_rate"),
    ):
        value = getattr(args, flag)
        if value is not None:
            section, field = path.split(".")
            setattr(getattr(config, section), field, value)
    if args.grayscale:
        config.data.color_mode = "grayscale"
    elif args.rgb:
        config.data.color_mode = "rgb"
    return config.validate()


def run_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # before importing TensorFlow: bad input fails at once

    from core.progress import TextProgress
    from core.runs import workspace_dir
    from core.training import create_run, train_run

    workspace = workspace_dir(args.workspace)
    run_dir = create_run(workspace, config, args.name)
    extra = [] if args.quiet else [TextProgress(sys.stderr, config.training.batch_size)]
    result = train_run(config, workspace, run_dir=run_dir, extra_callbacks=extra)
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
    print(json.dumps(result.to_dict()))
    return 0 if result.status.ended_well else EXIT_FAILED_RUN


def run_evaluate(args: argparse.Namespace) -> int:
    from core.evaluation import evaluate_run, html_report
    from core.runs import find_run, workspace_dir

    run = find_run(workspace_dir(args.workspace), args.run)
    evaluation = evaluate_run(run)
    if args.report:
        args.report.write_text(html_report(run, evaluation), encoding="utf-8")
    print(json.dumps({"run_dir": str(run.path), **evaluation.to_dict()}))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from core.export import FORMATS, export_run
    from core.runs import find_run, workspace_dir

    formats = list(FORMATS) if args.formats == "all" else [f.strip() for f in args.formats.split(",") if f.strip()]
    run = find_run(workspace_dir(args.workspace), args.run)
    results = export_run(
        run, formats, compare=not args.no_compare, progress=lambda message: print(message, file=sys.stderr)
    )
    summary = {}
    for fmt, result in results.items():
        entry = result.to_dict()
        entry["path"] = str(run.path / result.path) if result.path else None
        summary[fmt] = entry
    print(json.dumps({"run_dir": str(run.path), "formats": summary}))
    return 0 if all(r.error is None for r in results.values()) else EXIT_FAILED_RUN


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return run_train(args)
        if args.command == "evaluate":
            return run_evaluate(args)
        if args.command == "export":
            return run_export(args)
    except StudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
