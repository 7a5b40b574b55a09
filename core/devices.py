"""Which devices train a run, and how: the tf.distribute strategy, and logical CPU devices for machines without GPUs.

``CNN_STUDIO_CPU_DEVICES=N`` (or ``python -m core train --cpu-devices N``) splits the CPU into N logical devices
before TensorFlow starts, so ``MirroredStrategy`` trains over N replicas exactly as it would over N GPUs: how tests
and users without GPUs exercise the multi-device path. It must be applied before any TensorFlow work (TensorFlow
fixes its devices when its runtime starts), so the CLI and the trainer process call :func:`configure_devices` first.
"""

from __future__ import annotations

import os

from core.errors import StudioError
from core.i18n import _, number

CPU_DEVICES_ENV = "CNN_STUDIO_CPU_DEVICES"
MAX_CPU_DEVICES = 64

# The strategy created ahead of any other TensorFlow work (MultiWorkerMirroredStrategy must be: core.multiworker).
_early_strategy = None


def cpu_devices_setting(value: str | None = None, name: str = CPU_DEVICES_ENV) -> int:
    """The number of logical CPU devices asked for (1: the CPU as one device); a bad value is a StudioError
    naming ``name`` (the variable, or the CLI flag that gave ``value``)."""
    text = os.environ.get(CPU_DEVICES_ENV, "") if value is None else value
    if not text.strip():
        return 1
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_CPU_DEVICES:
        said = _(
            "{name} {value} is not a device count: give a whole number from 1 to {limit} (2 trains two replicas on "
            "the CPU, as on two GPUs), or leave it unset."
        )
        raise StudioError(said.format(name=name, value=repr(text), limit=MAX_CPU_DEVICES))
    return count


def configure_devices() -> int:
    """Split the CPU into the logical devices asked for; call before any other TensorFlow work. Returns the count."""
    count = cpu_devices_setting()
    if count > 1:
        import tensorflow as tf

        (cpu,) = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError:  # TensorFlow already started in this process: its devices are fixed
            if len(tf.config.list_logical_devices("CPU")) != count:
                said = _(
                    "{variable}={count} came after TensorFlow started in this process; set it before starting the "
                    "server or the command."
                )
                raise StudioError(said.format(variable=CPU_DEVICES_ENV, count=count)) from None
    return count


def set_early_strategy(strategy) -> None:
    """Keep a strategy created before any other TensorFlow work, for :func:`choose_strategy` to return."""
    global _early_strategy
    _early_strategy = strategy


def choose_strategy():
    """The strategy created early (several machines), else MirroredStrategy over several GPUs or several logical
    CPU devices, else the default strategy (one device)."""
    import tensorflow as tf

    if _early_strategy is not None:
        return _early_strategy
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if not gpus and len(cpus) > 1:
        return tf.distribute.MirroredStrategy([device.name for device in cpus])
    return tf.distribute.get_strategy()


def batch_text(global_batch: int, replicas: int) -> str:
    """``global batch 32 = 16 per replica × 2 replicas`` (the batch-size setting is the global batch)."""
    if replicas <= 1:
        return _("batch {batch} on one device").format(batch=number(global_batch))
    if global_batch % replicas == 0:
        said = _("global batch {batch} = {share} per replica × {replicas} replicas")
        return said.format(
            batch=number(global_batch), share=number(global_batch // replicas), replicas=number(replicas)
        )
    said = _("global batch {batch} split over {replicas} replicas")
    return said.format(batch=number(global_batch), replicas=number(replicas))
