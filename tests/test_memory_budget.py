"""A dataset upload cannot take the server down (#19): the decoded size is known from the entry count and
checked against a memory budget before anything is decoded, in the loader, the CLI and the app."""

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from core.budget import MemoryBudget, check_decoded_size, memory_budget
from core.config import DataConfig
from core.data import load_dataset, load_zip, planned_size
from core.errors import StudioError
from core.worker import run_in_worker

ROOT = Path(__file__).resolve().parent.parent
IMAGES = 60_000  # one-pixel PNGs: the issue's 10 MB ZIP that asks for 9.0 GB at 224×224×3
GB4 = MemoryBudget(4000 * 1000**2, "4.0 GB budget", "CNN_STUDIO_MEMORY_BUDGET_MB")


def pixel_zip(count: int = IMAGES, mode: str = "RGB") -> bytes:
    png = io.BytesIO()
    Image.new(mode, (1, 1), "red" if mode == "RGB" else 128).save(png, "PNG")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            zf.writestr(f"{'ab'[i % 2]}/{i}.png", png.getvalue())
    return out.getvalue()


@pytest.fixture(scope="module")
def big_zip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("budget") / "pixels.zip"
    path.write_bytes(pixel_zip())
    return path


def test_the_message_gives_the_numbers_and_sizes_that_fit():
    with pytest.raises(StudioError) as err:
        check_decoded_size(IMAGES, 224, 3, "ZIP 'pixels.zip'", GB4)
    assert str(err.value) == (
        "ZIP 'pixels.zip': 60,000 images at 224×224×3 need 9.0 GB decoded, over the 4.0 GB budget. To load it, "
        "choose a smaller image size (e.g. 128 → 2.9 GB), or choose Grayscale colour (3.0 GB), or use fewer "
        "images (at most 26,573 at this size), or ask the server's admin to raise CNN_STUDIO_MEMORY_BUDGET_MB."
    )
    check_decoded_size(IMAGES, 128, 3, "fits", GB4)  # 2.9 GB: no error


def test_budgets_come_from_the_settings_and_a_visitor_never_gets_more_than_the_machine(monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_MEMORY_BUDGET_MB", "4000")
    monkeypatch.setenv("CNN_STUDIO_VISITOR_DATA_MB", "1000")
    assert memory_budget().bytes == 4_000_000_000 and memory_budget().name == "4.0 GB budget"
    visitor = memory_budget(visitor=True)
    assert visitor.bytes == 1_000_000_000 and visitor.setting == "CNN_STUDIO_VISITOR_DATA_MB"
    assert "a visitor's dataset may take on this server" in visitor.name
    monkeypatch.setenv("CNN_STUDIO_VISITOR_DATA_MB", "9000")
    assert memory_budget(visitor=True).bytes == 4_000_000_000
    monkeypatch.delenv("CNN_STUDIO_MEMORY_BUDGET_MB")
    assert "a quarter of the" in memory_budget().name and memory_budget().bytes > 0
    monkeypatch.setenv("CNN_STUDIO_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(StudioError, match=r"CNN_STUDIO_MEMORY_BUDGET_MB='lots' is not a whole number of MB"):
        memory_budget()


def test_the_issue_zip_is_refused_before_decoding_even_in_a_small_process(big_zip):
    """In a worker limited to 1 GB (the issue's process was killed at 3 GB): a message, not a kill."""
    assert big_zip.stat().st_size < 12_000_000
    with pytest.raises(StudioError) as err:
        run_in_worker(load_zip, big_zip.read_bytes(), "pixels.zip", 224, 3, GB4, request="Loading", memory_mb=1024)
    assert "ZIP 'pixels.zip': 60,000 images at 224×224×3 need 9.0 GB decoded, over the 4.0 GB budget" in str(err.value)
    plan = planned_size(DataConfig(source="zip", path="pixels.zip", image_size=224), zip_bytes=big_zip.read_bytes())
    assert (plan.images, plan.size, plan.channels) == (IMAGES, 224, None)
    assert plan.text(GB4) == "60,000 images at 224×224: 3.0 GB decoded in grayscale, 9.0 GB in colour (budget 4.0 GB)"


def test_automatic_colour_is_checked_again_when_the_first_colour_image_decides(big_zip):
    """Grayscale would fit 4 GB (3.0 GB), so decoding starts; the first RGB image makes it 9.0 GB: refused."""
    config = DataConfig(source="zip", path="pixels.zip", image_size=224, color_mode="auto")
    with pytest.raises(StudioError, match=r"60,000 images at 224×224×3 need 9.0 GB decoded"):
        load_dataset(config, zip_bytes=big_zip.read_bytes(), budget=GB4)
    gray = pixel_zip(200, mode="L")  # a grayscale set within the budget loads as before
    small = MemoryBudget(200 * 64 * 64, "tiny budget", "X")
    dataset = load_dataset(DataConfig(source="zip", path="g.zip", image_size=64), zip_bytes=gray, budget=small)
    assert dataset.images.shape == (200, 64, 64, 1)


def test_every_source_is_checked_before_it_allocates():
    tiny = MemoryBudget(10**6, "1.0 MB budget", "CNN_STUDIO_MEMORY_BUDGET_MB")
    for source, expected in {
        "builtin:shapes": r"The Shapes set: 1,800 images at 512×512×3 need 1.4 GB",
        "builtin:digits": r"The Digits set: 1,797 images at 512×512×1 need 471.1 MB",
    }.items():
        with pytest.raises(StudioError, match=expected):
            load_dataset(DataConfig(source=source, image_size=512), budget=tiny)


def test_a_budget_set_too_high_still_fails_only_the_worker(big_zip):
    """Defence in depth: with the budget raised past the machine, the worker's memory limit ends the load."""
    huge = MemoryBudget(10**12, "1 TB budget", "CNN_STUDIO_MEMORY_BUDGET_MB")
    with pytest.raises(StudioError, match=r"Loading 'pixels.zip' needs more memory than the 1.0 GB"):
        run_in_worker(
            load_zip, big_zip.read_bytes(), "pixels.zip", 224, 3, huge, request="Loading 'pixels.zip'", memory_mb=1024
        )


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", "train", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=600,
    )


@pytest.mark.slow
def test_cli_exits_2_with_the_same_numbers_before_a_run_folder_exists(big_zip, tmp_path):
    workspace = tmp_path / "runs"
    env = {"CNN_STUDIO_MEMORY_BUDGET_MB": "4000"}
    flags = ("--data.image_size", "224", "--data.color_mode", "rgb", "--workspace", str(workspace))
    done = cli("--data", str(big_zip), *flags, env=env)
    assert done.returncode == 2, done.stderr
    assert "60,000 images at 224×224×3 need 9.0 GB decoded, over the 4.0 GB budget" in done.stderr
    assert "Traceback" not in done.stderr and not workspace.exists()
    # A folder whose size is known only once listed, and a dataset that cannot train: exit 2, no run folder.
    folder = tmp_path / "one-class" / "cats"
    folder.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(folder / f"{i}.png")
    done = cli("--data", str(folder.parent), "--workspace", str(workspace), env=env)
    assert done.returncode == 2 and "Only one class ('cats')" in done.stderr, done.stderr
    assert not workspace.exists() or not [p for p in workspace.iterdir() if p.is_dir()]


@pytest.mark.slow
def test_browser_the_upload_gets_a_message_and_the_server_serves_the_next_visitor(big_zip, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests import browser as b

    with b.streamlit_server(tmp_path / "runs", tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        chromium = b.launch(pw)
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(b.TIMEOUT_MS)
        b.goto(page, url)
        b.select(page, "Source", "ZIP of class folders")
        b.widget(page, "stRadio", "Colour").get_by_text("RGB (3 channels)", exact=True).click()
        b.wait_for_app(page)
        b.widget(page, "stSlider", "Image size (pixels, square)").locator('input[type="range"]').press("End")  # 512
        b.wait_for_app(page)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(big_zip))
        error = page.locator('[data-testid="stAlertContentError"]').filter(has_text="pixels.zip")
        error.wait_for(timeout=2 * b.TIMEOUT_MS)
        text = error.inner_text()
        assert "60,000 images at 512×512×3 need 47.2 GB decoded, over the" in text
        assert "choose a smaller image size (e.g." in text and "Traceback" not in text
        # The size is said beside the image-size control before anything is decoded.
        page.get_by_text("In memory: 60,000 images at 512×512×3: 47.2 GB decoded").wait_for()
        page.context.close()
        other = chromium.new_page(viewport={"width": 1400, "height": 900})
        other.set_default_timeout(b.TIMEOUT_MS)
        b.goto(other, url)
        b.expect_metric(other, "Classes", "6")  # the default Shapes set, drawn for the next visitor
        chromium.close()
