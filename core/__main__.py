"""CNN Studio's command line: the same core the app uses, with no UI.

    python -m core train --data builtin:digits --preset mnist --epochs 2
    python -m core train --data photos.zip --image-size 64 --workspace runs
    python -m core train --config cnn-studio-config.json --set model.filters=16,32 --training.optimizer adamw
    python -m core settings      # every config field with its flag, default and range
    python -m core evaluate --run runs/20261122-101500-mnist-digits-1a2b
    python -m core export --run runs/20261122-101500-mnist-digits-1a2b --formats tfjs,tflite,tflite-int8
    python -m core serve --run runs/20261122-101500-mnist-digits-1a2b --port 8502

The last line on stdout is one JSON object; progress goes to stderr. Bad input exits with status 2 and a
one-line message; a run that fails exits with status 1 (its JSON says why).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import re
import sys
import tempfile
import textwrap
import unicodedata
from pathlib import Path

from core import i18n
from core.config import (
    DEFAULT_PRESET,
    FIELDS,
    KERAS_SOURCES,
    StudioConfig,
    apply_recipe,
    field_info,
    get_field,
    set_field,
    settings_table,
)
from core.devices import CPU_DEVICES_ENV, configure_devices, cpu_devices_setting
from core.errors import StudioError
from core.fields import FieldInfo, parse_text
from core.formats import format_help
from core.i18n import N_, _, cli_language, number, using
from core.multiworker import cluster_from_env, train_in_cluster
from core.multiworker import start as start_cluster
from core.sweep import default_param_texts

EXIT_FAILED_RUN = 1
EXIT_BAD_INPUT = 2
DATA_HELP = N_(
    "shorthand for the source: builtin:digits, builtin:shapes, {keras_sources}, a folder with one subfolder per "
    "class, or a ZIP of such folders (default: the config's source)"
)
EXAMPLES = __doc__.split("\n\n")[1]  # the command lines of the docstring above
SETTINGS_COMMENT = N_("every config field with its flag, default and range")  # the examples' one comment
# argparse's own words (usage, section titles, its errors), looked up in the studio's catalog: argparse reads
# them through its module's ``_`` and ``ngettext``, which main() points at core.i18n while it runs.
ARGPARSE_MESSAGES = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("expected one argument"),
    N_("not allowed with argument %s"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
)
OUTPUT_NOTE = N_(
    "The last line on stdout is one JSON object; progress goes to stderr. Bad input exits with status 2 and a "
    "one-line message; a run that fails exits with status 1 (its JSON says why)."
)
# TensorFlow's and LiteRT's native log lines, written straight to file descriptor 2 past Python's logging:
# absl's format (I0000 00:00:… file.cc:12]), TensorFlow's older one (2026-… file.cc:12] …), absl's notice that
# it is not initialized, the TFLite converter's and interpreter's own lines.
NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\]|"
    r"WARNING: All log messages before absl::InitializeLog|INFO: Created TensorFlow Lite|fully_quantize: )"
)
METAVARS = {bool: "BOOL", int: "N", float: "F", str: "TEXT", list: "N,N,..."}


def field_help(info: FieldInfo) -> str:
    """One flag's help, all from the field table: label, help, allowed values and default."""
    text = _("{label}: {help} Allowed: {range}. Default: {default}.").format(
        label=info.label(), help=info.help(), range=info.range_text(), default=info.default_text()
    )
    return text.replace("%", "%%")  # argparse formats help with %


# Characters a terminal shows two columns wide (CJK), and the punctuation that must not start a line.
WIDE = "\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
CLOSING = "，。、；：）」』”’！？》"
OPENING = "（「『“‘《"
WRAP_TOKEN = re.compile(rf"\s+|[{OPENING}]*[^\s{WIDE}]+[{CLOSING}]*|[{OPENING}]*[{WIDE}][{CLOSING}]*")
HAS_WIDE = re.compile(f"[{WIDE}]")


def wrap_text(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` terminal columns: English at spaces (ids such as
    ``mobilenetv2-transfer`` unbroken at their hyphens), Chinese also between characters, counted two columns."""
    text = " ".join(text.split())
    if not HAS_WIDE.search(text):
        return textwrap.wrap(text, width, break_on_hyphens=False)
    lines, line, used = [], "", 0
    for token in WRAP_TOKEN.findall(text):
        size = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in token)
        if used + size > width and line.strip():
            lines.append(line.rstrip())
            line, used = "", 0
            if token.isspace():
                continue
        line, used = line + token, used + size
    return [*lines, line.rstrip()] if line.strip() else lines


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps help lines and paragraphs of descriptions in any language (indented paragraphs, the examples, are
    kept as written)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return wrap_text(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            if paragraph.startswith(" "):
                paragraphs.append("\n".join(indent + line for line in paragraph.splitlines()))
            else:
                paragraphs.append("\n".join(indent + line for line in wrap_text(paragraph, width - len(indent))))
        return "\n\n".join(paragraphs)


def _metavar(info: FieldInfo) -> str:
    return "CHOICE" if info.spec.choices and info.kind is str else METAVARS[info.kind]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description=_("CNN Studio from the command line: train image classifiers headless."),
        formatter_class=HelpFormatter,
        epilog=EXAMPLES.replace(SETTINGS_COMMENT, _(SETTINGS_COMMENT)) + "\n\n" + _(OUTPUT_NOTE),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train",
        formatter_class=HelpFormatter,
        help=_("train a model and keep the run in the workspace"),
        description=_(
            "Train a model headless, with a text progress bar on stderr and a JSON summary on stdout. The config is "
            "the --config file (or the defaults), then --data, then the preset (its values), then each field flag, "
            "then each --set. Every config field has a flag --SECTION.FIELD VALUE."
        ),
    )
    add_config_arguments(train)
    train.add_argument("--name", help=_("a name for the run in the history"))
    train.add_argument("--quiet", action="store_true", help=_("no progress bar"))
    train.add_argument(
        "--cpu-devices",
        metavar="N",
        help=_(
            "split the CPU into N logical devices and train on all of them in sync (MirroredStrategy, as on N GPUs; "
            "the batch size stays global); default ${variable} or 1"
        ).format(variable=CPU_DEVICES_ENV),
    )
    train.add_argument(
        "--init-from",
        metavar="RUN",
        help=_(
            "fine-tune: start from this run's weights and settings (a run folder or id); on a dataset with other "
            "classes the classifier head starts anew"
        ),
    )
    sweep = commands.add_parser(
        "sweep",
        formatter_class=HelpFormatter,
        help=_("search settings with Optuna: every trial is a run in the history"),
        description=_(
            "Start (or, with --sweep, resume) a hyperparameter sweep: TPE sampling over the --param fields, poor "
            "trials pruned from their epoch validation metric. The base config is built as for train. Each trial "
            "waits for the workspace's trainer like any run. Prints one JSON object: the trials, the best trial and "
            "its config."
        ),
    )
    add_config_arguments(sweep)
    sweep.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="FIELD=RANGE",
        help=_(
            "a searched field: FIELD=LOW:HIGH, FIELD=LOW:HIGH:log or FIELD=A,B,C (repeatable; default: {defaults})"
        ).format(defaults=" ".join(default_param_texts())),
    )
    sweep.add_argument("--trials", type=int, default=10, metavar="N", help=_("the trial budget (default 10)"))
    sweep.add_argument(
        "--metric",
        default="val_accuracy",
        choices=("val_accuracy", "val_loss"),
        help=_("the validation metric the sweep optimizes (default val_accuracy)"),
    )
    sweep.add_argument("--sweep", metavar="ID", help=_("resume this sweep instead of starting one"))
    sweep.add_argument("--quiet", action="store_true", help=_("no progress bar"))
    sweep.add_argument("--background", action="store_true", help=argparse.SUPPRESS)  # started by the Sweep page
    resume = commands.add_parser(
        "resume",
        formatter_class=HelpFormatter,
        help=_("continue a stopped, interrupted or finished run for more epochs"),
        description=_(
            "Train a run further from its last epoch's checkpoint, with its optimizer state, settings and split; its "
            "epoch count and metrics go on in the same folder. Prints the same JSON as train."
        ),
    )
    resume.add_argument("--run", required=True, metavar="RUN_DIR", help=_("a run folder, or a run id in the workspace"))
    resume.add_argument("--epochs", required=True, type=int, metavar="N", help=_("how many more epochs"))
    resume.add_argument("--workspace", metavar="DIR", help=_("where to look up a run id"))
    resume.add_argument(
        "--data", metavar="SOURCE", help=_("the run's dataset again, when its path has moved or it was an upload")
    )
    resume.add_argument("--quiet", action="store_true", help=_("no progress bar"))
    evaluate = commands.add_parser(
        "evaluate",
        formatter_class=HelpFormatter,
        help=_("score a run on its held-out test split"),
        description=_("Print one JSON object: accuracy, loss, top-3 accuracy, confusion matrix, per-class metrics."),
    )
    evaluate.add_argument(
        "--run", required=True, metavar="RUN_DIR", help=_("a run folder, or a run id in the workspace")
    )
    evaluate.add_argument("--workspace", metavar="DIR", help=_("where to look up a run id"))
    evaluate.add_argument("--report", metavar="FILE", type=Path, help=_("also write the standalone HTML report here"))
    export = commands.add_parser(
        "export",
        formatter_class=HelpFormatter,
        help=_("export a run for TF.js, TFLite and more, measured against Keras"),
        description=_(
            "Write the formats into RUN_DIR/exports (reusing earlier exports of the same model) and print one JSON "
            "object: per format its path, size in bytes, test accuracy and max abs difference, and the fidelity "
            "checks with their verdict (also on stderr, one line each)."
        ),
    )
    export.add_argument("--run", required=True, metavar="RUN_DIR", help=_("a run folder, or a run id in the workspace"))
    export.add_argument("--workspace", metavar="DIR", help=_("where to look up a run id"))
    export.add_argument(
        "--formats",
        default="all",
        metavar="LIST",
        help=format_help(),
    )
    export.add_argument("--no-compare", action="store_true", help=_("skip running each format on the test split"))
    stop = commands.add_parser(
        "stop",
        formatter_class=HelpFormatter,
        help=_("ask a queued or training run to stop, whichever process trains it"),
        description=_(
            "Create the run's STOP request: its trainer (the app's, another server's or a CLI's) ends at its next "
            "step and keeps its best weights; a run still waiting its turn ends before it starts."
        ),
    )
    stop.add_argument("--run", required=True, metavar="RUN_DIR", help=_("a run folder, or a run id in the workspace"))
    stop.add_argument("--workspace", metavar="DIR", help=_("where to look up a run id"))
    add_serve_parser(commands)
    commands.add_parser(
        "settings",
        formatter_class=HelpFormatter,
        help=_("print every config field with its default and range (the README's settings table)"),
        description=_("Print the settings table, in Markdown, generated from the config's field declarations."),
    )
    return parser


def add_serve_parser(commands) -> None:
    """``serve``: TensorFlow Serving's REST API for one run, on this machine (core/server.py)."""
    from core.serving import DEFAULT_HOST, DEFAULT_PORT

    serve = commands.add_parser(
        "serve",
        formatter_class=HelpFormatter,
        help=_("answer TensorFlow Serving's REST API for a run's model (predict over HTTP)"),
        description=_(
            "Serve the run's model with TensorFlow Serving's REST API: GET /v1/models/NAME (status), GET "
            "/v1/models/NAME/metadata and POST /v1/models/NAME:predict with {instances} of raw 0..255 pixel arrays "
            "or {b64} image files. NAME is the run's name, as in its saved_model.zip. Prints one JSON line (the "
            "model's URL) once it answers; Ctrl+C stops it."
        ).format(instances='{"instances": [...]}', b64='{"b64": "..."}'),
    )
    serve.add_argument("--run", required=True, metavar="RUN_DIR", help=_("a run folder, or a run id in the workspace"))
    serve.add_argument("--workspace", metavar="DIR", help=_("where to look up a run id"))
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, metavar="N", help=_("default {port}").format(port=DEFAULT_PORT)
    )
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=_("the address to listen on (default {host})").format(host=DEFAULT_HOST)
    )
    serve.add_argument(
        "--no-batching",
        action="store_true",
        help=_("each request calls Keras's model.predict on its own, the naive way (for comparison: it is slower)"),
    )


def run_serve(args: argparse.Namespace) -> int:
    from core.runs import find_run, workspace_dir
    from core.server import bind

    if not 0 < args.port < 65536:
        raise StudioError(_("--port {port} is not a port: give a number from 1 to 65535.").format(port=args.port))
    workspace = workspace_dir(args.workspace)
    run = find_run(workspace, args.run)  # before TensorFlow: a wrong run fails at once
    run.model_path()  # a run with no model file says so, before TensorFlow loads
    sock = bind(args.host, args.port)
    import_tensorflow_quietly()
    from core.server import load_served_run, serve

    with files_as_input_errors(workspace):
        served = load_served_run(run)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{sock.getsockname()[1]}/v1/models/{served.name}"
    print(
        _("Serving run '{name}' as {url} (TensorFlow Serving's REST API); Ctrl+C stops.").format(
            name=run.name, url=url
        ),
        file=sys.stderr,
    )
    print(json.dumps({"run_dir": str(run.path), "model": served.name, "url": url}), flush=True)
    serve(served, sock, batching=not args.no_batching)
    return 0


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that build a config: --data, --config, --set, --grayscale/--rgb, --workspace and one flag per
    field of the config table."""
    parser.add_argument("--data", metavar="SOURCE", help=_(DATA_HELP).format(keras_sources=", ".join(KERAS_SOURCES)))
    parser.add_argument("--config", metavar="FILE", type=Path, help=_("a config JSON downloaded from the app"))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help=_("set any config field, e.g. --set model.filters=16,32 (repeatable; applied last)"),
    )
    colour = parser.add_mutually_exclusive_group()
    colour.add_argument("--grayscale", action="store_true", help=_("one channel (data.color_mode grayscale)"))
    colour.add_argument("--rgb", action="store_true", help=_("three channels (data.color_mode rgb)"))
    parser.add_argument(
        "--workspace", metavar="DIR", help=_("where runs are kept (default: $CNN_STUDIO_WORKSPACE or ./runs)")
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for info in FIELDS.values():
        if info.section not in groups:
            groups[info.section] = parser.add_argument_group(_("{section} settings").format(section=info.section))
        groups[info.section].add_argument(
            info.flag, *info.spec.aliases, dest=info.path, metavar=_metavar(info), help=field_help(info)
        )


def apply_data(config: StudioConfig, source: str) -> None:
    """``--data``: a built-in or Keras id, a folder of class folders, or a ZIP of them."""
    if source.startswith(("builtin:", "keras:")):
        config.data.source, config.data.path = source, ""
        return
    path = Path(source).expanduser()
    if path.is_dir():
        config.data.source, config.data.path = "folder", str(path)
    elif path.suffix.lower() == ".zip":
        if not path.is_file():
            raise StudioError(_("--data {source}: no such ZIP file. Check the path.").format(source=source))
        config.data.source, config.data.path = "zip", str(path)
    else:
        raise StudioError(
            _(
                "--data {source} is not a dataset: use builtin:digits, builtin:shapes, keras:mnist, "
                "keras:fashion_mnist, keras:cifar10, keras:cifar100, a folder of class folders or a .zip of them."
            ).format(source=source)
        )


def field_changes(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(path, text, flag as typed) for every field flag given, in table order, then every --set."""
    changes = [(path, getattr(args, path), f"--{path}") for path in FIELDS if getattr(args, path) is not None]
    if args.grayscale or args.rgb:
        changes.append(("data.color_mode", "grayscale" if args.grayscale else "rgb", "--grayscale/--rgb"))
    for item in args.set:
        path, sep, text = item.partition("=")
        path = path.strip()
        if not sep or not _is_field(path):
            raise StudioError(
                _(
                    "--set {item}: give FIELD=VALUE with a config field, e.g. --set training.epochs=5 "
                    "(python -m core settings lists them)."
                ).format(item=item)
            )
        changes.append((path, text, f"--set {path}"))
    return changes


def _is_field(path: str) -> bool:
    try:
        field_info(path)
    except KeyError:
        return False
    return True


def config_from_args(args: argparse.Namespace) -> StudioConfig:
    """The run's config: the file (or defaults), then --data, then the preset, then each field flag and --set."""
    if args.config:
        try:
            config = StudioConfig.from_json(args.config.read_bytes())
        except OSError as err:
            raise StudioError(
                _("Cannot read --config {path}: {reason}.").format(path=args.config, reason=err.strerror)
            ) from None
    elif getattr(args, "init_from", None):
        from core.resume import fine_tune_config
        from core.runs import find_run, workspace_dir

        config = fine_tune_config(find_run(workspace_dir(args.workspace), args.init_from).path)
    else:
        config = StudioConfig()
    if args.data:
        apply_data(config, args.data)
    changes = field_changes(args)
    starts_anew = not args.config and not getattr(args, "init_from", None)
    if starts_anew and not any(path == "model.preset" for path, _text, _flag in changes):
        apply_recipe(config, DEFAULT_PRESET)  # no config file and no preset: the studio's own recipe
    for path, text, _flag in changes:
        # A preset brings its values first; the flags that follow change them, as the sliders do in the app.
        if path == "model.preset" and text.strip() != "custom":
            apply_recipe(config, text.strip())
    for path, text, flag in changes:
        if path != "model.preset" or text.strip() == "custom":
            set_field(config, path, parse_text(field_info(path), text, get_field(config, path), flag))
    return config.validate()


def config_flags(config: StudioConfig) -> list[str]:
    """Every field of ``config`` as command-line flags (``python -m core train`` rebuilds the same config)."""
    flags: list[str] = []
    for path, info in FIELDS.items():
        flags += [info.flag, info.value_text(get_field(config, path))]
    return flags


@contextlib.contextmanager
def native_logs_filtered():
    """Run a command with file descriptor 2 captured, Python's own stderr still going straight to the terminal;
    at the end, pass on every captured line that is not a native TensorFlow/LiteRT log line."""
    sys.stderr.flush()
    saved = os.dup(2)
    own = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    python_stderr = sys.stderr
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        sys.stderr = own
        try:
            yield
        finally:
            own.flush()
            sys.stderr = python_stderr
            os.dup2(saved, 2)
            os.close(saved)
            own.close()
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not NATIVE_LOG.search(line):
                    print(line, file=sys.stderr)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and list its devices (CUDA probing logs then, not mid-run), with TensorFlow's and
    Keras's Python-side logs and warnings lowered to errors."""
    import logging
    import warnings

    import tensorflow as tf

    tf.config.list_logical_devices()
    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")


def run_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # before importing TensorFlow: bad input fails at once
    from core.data import check_source

    # A ZIP that cannot be used (all encrypted, a bomb, over the memory budget) fails before TensorFlow loads.
    check_source(config.data)
    if args.cpu_devices is not None:
        os.environ[CPU_DEVICES_ENV] = str(cpu_devices_setting(args.cpu_devices, "--cpu-devices"))
    configure_devices()  # before any other TensorFlow work: it fixes the devices when it starts
    cluster = cluster_from_env()  # TF_CONFIG: several machines
    if cluster is not None:
        start_cluster(cluster)  # meets the other workers, then the strategy before any other TensorFlow work
    import_tensorflow_quietly()

    from core.data import load_dataset, split_dataset
    from core.runs import workspace_dir
    from core.training import create_run

    # A dataset that cannot train (over the budget once decoded, one class, too few images to split) is bad
    # input: exit 2 before a run folder exists.
    dataset = load_dataset(config.data, stream=True)  # a folder over the memory budget streams from disk
    if getattr(dataset, "streamed", False):
        print(
            _("streaming {count} images from disk: decoded they would not fit the memory budget").format(
                count=number(len(dataset.labels))
            ),
            file=sys.stderr,
        )
    data = config.data
    split_dataset(dataset, data.val_split, data.test_split, data.seed, data.use_official_test)
    workspace = workspace_dir(args.workspace)
    init_from = None
    if args.init_from:
        if cluster is not None:
            raise StudioError(_("--init-from trains on one machine: run it without TF_CONFIG."))
        from core.resume import source_model_path
        from core.runs import find_run

        init_from = source_model_path(find_run(workspace, args.init_from).path)
    if cluster is not None:  # the chief creates the run folder once the workers have met
        return _train_and_report(config, workspace, None, dataset, args.quiet, cluster=cluster, name=args.name)
    run_dir = create_run(workspace, config, args.name, owner=getpass.getuser())
    return _train_and_report(config, workspace, run_dir, dataset, args.quiet, init_from=init_from)


def _train_and_report(config, workspace, run_dir, dataset, quiet: bool, cluster=None, name=None, **options) -> int:
    """Train (or continue) a run with a progress bar on stderr and its JSON summary on stdout; with ``cluster``,
    on several machines (TF_CONFIG)."""
    from core.progress import TextProgress
    from core.trainer_lock import current_holder
    from core.training import train_run

    extra = [] if quiet else [TextProgress(sys.stderr, config.training.batch_size)]
    holder = current_holder(workspace)
    if holder is not None:  # train_run waits for the workspace's trainer lock; say why nothing happens yet
        print(_("waiting: {holder} is training in this workspace").format(holder=holder.describe()), file=sys.stderr)
    if cluster is not None:
        result = train_in_cluster(cluster, config, workspace, dataset, name, extra)
    else:
        result = train_run(config, workspace, run_dir=run_dir, dataset=dataset, extra_callbacks=extra, **options)
    if result.error:
        print(_("error: {message}").format(message=result.error), file=sys.stderr)
    print(json.dumps(result.to_dict()))
    return 0 if result.status.ended_well else EXIT_FAILED_RUN


def run_resume(args: argparse.Namespace) -> int:
    """``resume``: the run's own config with more epochs, its dataset loaded again, trained on in its folder."""
    from core.resume import resume_config
    from core.runs import find_run, workspace_dir

    workspace = workspace_dir(args.workspace)
    run = find_run(workspace, args.run)
    config = resume_config(run.path, args.epochs)
    if args.data:
        apply_data(config, args.data)
    from core.data import check_source

    check_source(config.data)
    import_tensorflow_quietly()
    from core.data import load_dataset
    from core.resume import check_same_classes
    from core.status import RunState, update_status

    dataset = load_dataset(config.data)
    check_same_classes(run.path, dataset.class_names)
    update_status(run.path, state=RunState.QUEUED, error=None)
    return _train_and_report(config, workspace, run.path, dataset, args.quiet, resume=True)


def run_sweep_command(args: argparse.Namespace) -> int:
    """``sweep``: a new sweep from the base config and --param fields, or --sweep ID resumed; JSON summary."""
    from core.runs import workspace_dir
    from core.sweep import clear_stop, create_sweep, load_spec, parse_param, run_sweep

    workspace = workspace_dir(args.workspace)
    if args.sweep:
        spec = load_spec(workspace, args.sweep)
        if not args.background:
            clear_stop(workspace, args.sweep)  # resuming by hand; the page clears it before it starts this process
    else:
        params = [parse_param(text) for text in args.param] or None
        config = config_from_args(args)
        from core.data import check_source

        check_source(config.data)
        spec = create_sweep(workspace, config, params, args.trials, args.metric)
    base = StudioConfig.from_dict(spec.base)
    import_tensorflow_quietly()
    from core.data import load_dataset, split_dataset
    from core.progress import TextProgress

    dataset = load_dataset(base.data)
    split_dataset(dataset, base.data.val_split, base.data.test_split, base.data.seed, base.data.use_official_test)
    print(
        _("sweep {sweep}: {trials} trials, {metric}").format(
            sweep=spec.sweep_id, trials=spec.trials, metric=spec.metric
        ),
        file=sys.stderr,
    )

    def extra() -> list:
        return [] if args.quiet else [TextProgress(sys.stderr, base.training.batch_size)]

    def on_trial(number: int, run_id: str) -> None:
        print(
            _("trial {number}/{trials}: run {run}").format(number=number, trials=spec.trials, run=run_id),
            file=sys.stderr,
        )

    print(json.dumps(run_sweep(workspace, spec.sweep_id, dataset, extra, on_trial)))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from core.evaluation import evaluate_run
    from core.files import DiskFull, atomic_write_bytes, disk_full_error
    from core.report import html_report
    from core.runs import find_run, workspace_dir

    workspace = workspace_dir(args.workspace)
    with files_as_input_errors(workspace):
        run = find_run(workspace, args.run)
        evaluation = evaluate_run(run)
    if args.report:
        report = html_report(run, evaluation).encode("utf-8")
        try:
            atomic_write_bytes(args.report, report)
        except DiskFull:
            raise disk_full_error(args.report.resolve().parent, len(report)) from None
        except OSError as err:
            raise StudioError(
                _("Cannot write --report {path}: {reason}. Give a writable path.").format(
                    path=args.report, reason=err.strerror
                )
            ) from None
    print(json.dumps({"run_dir": str(run.path), **evaluation.to_dict()}))
    return 0


@contextlib.contextmanager
def files_as_input_errors(workspace: Path):
    """evaluate and export: a run file the OS cannot read, or a full disk, is a one-line error (exit 2)."""
    from core.files import disk_full_error, is_disk_full

    try:
        yield
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(workspace, 0) from None
        if err.filename:
            message = _(
                "Cannot read or write {file}: {reason}. Check the run folder's files and permissions, or delete the "
                "run and train it again."
            )
        else:
            message = _(
                "Cannot read or write: {reason}. Check the run folder's files and permissions, or delete the run and "
                "train it again."
            )
        raise StudioError(message.format(file=err.filename, reason=err.strerror or err)) from None


def run_export(args: argparse.Namespace) -> int:
    from core.formats import parse_formats

    formats = parse_formats(args.formats)  # before TensorFlow: a wrong id fails at once
    import_tensorflow_quietly()
    from core.export import export_run, export_summary
    from core.runs import find_run, workspace_dir

    workspace = workspace_dir(args.workspace)
    with files_as_input_errors(workspace):
        run = find_run(workspace, args.run)
        results = export_run(
            run, formats, compare=not args.no_compare, progress=lambda message: print(message, file=sys.stderr)
        )
        summary = export_summary(run, results)
    for check in summary["checks"]:
        line = _("ok   {label}: {detail}") if check["passed"] else _("FAIL {label}: {detail}")
        print(line.format(label=check["label"], detail=check["detail"]), file=sys.stderr)
    print(json.dumps(summary))
    return 0 if all(r.error is None for r in results.values()) else EXIT_FAILED_RUN


def main(argv: list[str] | None = None) -> int:
    # The command line speaks the language of CNN_STUDIO_LANG, else of the environment's locale (LANG…).
    try:
        lang = cli_language()
    except StudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with using(lang), argparse_speaks_the_language():
        return _main(argv)


@contextlib.contextmanager
def argparse_speaks_the_language():
    """argparse's own words (``usage:``, ``options``, its errors) from the studio's catalog while the CLI runs."""
    saved = argparse._, argparse.ngettext
    argparse._, argparse.ngettext = i18n.gettext, i18n.ngettext
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "settings":
        print(settings_table(cli_language()))
        return 0
    try:
        with native_logs_filtered():
            return COMMANDS[args.command](args)
    except StudioError as err:
        print(_("error: {message}").format(message=err), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(_("error: interrupted"), file=sys.stderr)
        return 130


def run_stop(args: argparse.Namespace) -> int:
    from core.runs import find_run, workspace_dir
    from core.trainer_lock import request_stop

    run = find_run(workspace_dir(args.workspace), args.run)
    if not run.state.live:
        raise StudioError(
            _("Run '{name}' is {state}, not queued or training: there is nothing to stop.").format(
                name=run.name, state=run.state
            )
        )
    request_stop(run.path)
    print(json.dumps({"run_dir": str(run.path), "stop_requested": True}))
    return 0


COMMANDS = {
    "train": run_train,
    "resume": run_resume,
    "sweep": run_sweep_command,
    "evaluate": run_evaluate,
    "export": run_export,
    "stop": run_stop,
    "serve": run_serve,
}

if __name__ == "__main__":
    sys.exit(main())
