"""How much memory a decoded dataset may take, checked before a single image is decoded (#19).

A dataset is one uint8 array of images × size × size × channels. Its size is known from the entry count
before anything is decoded, so a 10 MB ZIP of 60,000 one-pixel PNGs asked for at 224×224×3 (9.0 GB) is
refused with the numbers and a size that fits, instead of filling memory until the kernel kills the process.

Two budgets:

* **the machine's**: a quarter of the memory available when the load starts (``MemAvailable``), because
  training holds up to three copies of the set (the array, the tf.data tensor, a batch of augmented
  copies); ``CNN_STUDIO_MEMORY_BUDGET_MB`` sets it instead. The command line and scripts use it.
* **a visitor's**, on a shared server: at most ``CNN_STUDIO_VISITOR_DATA_MB`` (2000, i.e. 2 GB), and never more than
  the machine's, so one visitor cannot take the memory of the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.errors import StudioError
from core.i18n import _, number

BUDGET_ENV = "CNN_STUDIO_MEMORY_BUDGET_MB"
VISITOR_ENV = "CNN_STUDIO_VISITOR_DATA_MB"
AVAILABLE_FRACTION = 0.25  # of MemAvailable: training holds up to three copies of the decoded set
VISITOR_DATA_MB = 2000
MB = 1000**2  # decimal, as the messages count (9.0 GB is 9.0e9 bytes): 4000 reads back as "4.0 GB"
# Sizes suggested when a set does not fit (the image-size control's common values), largest first.
SUGGESTED_SIZES = (384, 320, 256, 224, 192, 160, 128, 112, 96, 80, 64, 48, 32, 28, 24, 16, 8)


@dataclass(frozen=True)
class MemoryBudget:
    """At most ``bytes`` for one decoded dataset; ``name`` says whose budget it is, ``setting`` how to raise it."""

    bytes: int
    name: str
    setting: str


def available_memory() -> int:
    """Bytes the kernel says can be allocated without swapping (MemAvailable), else the physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _setting_mb(variable: str) -> int | None:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise StudioError(
            _("The server setting {setting} is not a whole number of MB ≥ 1: fix or unset it.").format(
                setting=f"{variable}={raw!r}"
            )
        )
    return int(raw)


def memory_budget(visitor: bool = False) -> MemoryBudget:
    """The budget of one decoded dataset: the machine's, or (``visitor``) a visitor's on a shared server."""
    configured = _setting_mb(BUDGET_ENV)
    if configured is not None:
        machine = MemoryBudget(
            configured * MB, _("{size} budget").format(size=human_bytes(configured * MB)), BUDGET_ENV
        )
    else:
        available = available_memory()
        machine = MemoryBudget(
            int(available * AVAILABLE_FRACTION),
            _("{size} budget (a quarter of the {available} of memory available)").format(
                size=human_bytes(int(available * AVAILABLE_FRACTION)), available=human_bytes(available)
            ),
            BUDGET_ENV,
        )
    if not visitor:
        return machine
    cap = (_setting_mb(VISITOR_ENV) or VISITOR_DATA_MB) * MB
    if cap >= machine.bytes:
        return machine
    name = _("{size} a visitor's dataset may take on this server").format(size=human_bytes(cap))
    return MemoryBudget(cap, name, VISITOR_ENV)


def decoded_bytes(count: int, size: int, channels: int) -> int:
    """Bytes of ``count`` uint8 images of size × size × channels."""
    return int(count) * int(size) * int(size) * int(channels)


def human_bytes(n: float) -> str:
    """Decimal units, as disks and the issue tracker count them: 9.0 GB, 705.6 MB, 12 KB."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    return f"{max(n, 0) / 1e3:.0f} KB"


def largest_size_that_fits(count: int, channels: int, budget: MemoryBudget, below: int) -> int | None:
    """The largest suggested image size under ``below`` at which ``count`` images fit the budget."""
    for size in SUGGESTED_SIZES:
        if size < below and decoded_bytes(count, size, channels) <= budget.bytes:
            return size
    return None


def check_decoded_size(count: int, size: int, channels: int, label: str, budget: MemoryBudget) -> None:
    """StudioError naming the numbers and the fix when ``count`` images at size × size × channels do not fit."""
    need = decoded_bytes(count, size, channels)
    if need <= budget.bytes:
        return
    fixes = []
    smaller = largest_size_that_fits(count, channels, budget, size)
    if smaller:
        fixes.append(
            _("choose a smaller image size (e.g. {size} → {need})").format(
                size=smaller, need=human_bytes(decoded_bytes(count, smaller, channels))
            )
        )
    if channels == 3 and decoded_bytes(count, size, 1) <= budget.bytes:
        fixes.append(_("choose Grayscale colour ({need})").format(need=human_bytes(decoded_bytes(count, size, 1))))
    most = budget.bytes // max(decoded_bytes(1, size, channels), 1)
    fixes.append(_("use fewer images (at most {count} at this size)").format(count=number(most)))
    fixes.append(_("ask the server's admin to raise {setting}").format(setting=budget.setting))
    raise StudioError(
        _("{label}: {count} images at {shape} need {need} decoded, over the {budget}. To load it, {fixes}.").format(
            label=label,
            count=number(count),
            shape=f"{size}×{size}×{channels}",
            need=human_bytes(need),
            budget=budget.name,
            fixes=_(", or ").join(fixes),  # the list's separator: "，或" in Chinese
        )
    )
