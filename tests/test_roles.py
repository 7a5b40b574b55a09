"""Who may do what, in the browser: a server behind an authenticating proxy (the user in a trusted header),
visited by a viewer, two editors and an admin. Each sees only the buttons their role allows."""

import pytest

from core.config import StudioConfig, apply_preset
from core.training import create_run, train_run
from tests import browser as b

pytestmark = pytest.mark.slow

ROLES = {
    "CNN_STUDIO_USER_HEADER": "X-Forwarded-User",
    "CNN_STUDIO_ADMINS": "ada",
    "CNN_STUDIO_VIEWERS": "board",
}


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roles")
    workspace = tmp / "runs"
    config = StudioConfig()
    config.data.source = "builtin:digits"
    config.model = apply_preset("mnist")
    config.training.epochs = 1
    run_dir = create_run(workspace, config, "alice's digits", owner="alice")
    assert train_run(config, workspace, run_dir=run_dir).status == "finished"
    with b.streamlit_server(workspace, tmp / "streamlit.log", env=ROLES) as url:
        yield url


def visit(chromium, url: str, user: str | None):
    headers = {"X-Forwarded-User": user} if user else {}
    page = chromium.new_context(viewport={"width": 1400, "height": 900}, extra_http_headers=headers).new_page()
    page.set_default_timeout(b.TIMEOUT_MS)
    b.goto(page, url)
    b.navigate(page, "Train")
    page.locator(".st-key-delete_run button").wait_for()
    return page


def disabled(page, key: str) -> bool:
    return page.locator(f".st-key-{key} button").first.is_disabled()


def test_each_role_sees_what_it_may_do(team_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = b.launch(playwright)
        viewer = visit(chromium, team_server, "board")
        viewer.get_by_text("Signed in as board · viewer").wait_for()
        assert disabled(viewer, "start_training") and disabled(viewer, "delete_run") and disabled(viewer, "rename_run")
        viewer.get_by_text("viewers cannot train").first.wait_for()
        b.navigate(viewer, "Evaluate")  # viewers still evaluate the run
        viewer.get_by_text("Confusion matrix").first.wait_for()
        b.navigate(viewer, "Dataset")  # ... but never read server folders
        b.widget(viewer, "stSelectbox", "Source").locator('[role="combobox"], input').first.click()
        options = viewer.get_by_role("option").all_inner_texts()
        assert options and not any("Folder on the server" in option for option in options)
        viewer.keyboard.press("Escape")
        viewer.context.close()  # idle tabs still cost the server CPU (issue #18): one visitor at a time

        anonymous = visit(chromium, team_server, None)  # no header: a viewer too
        anonymous.get_by_text("Signed in as anonymous · viewer").wait_for()
        assert disabled(anonymous, "start_training")
        anonymous.context.close()

        bob = visit(chromium, team_server, "bob")  # an editor: trains, but alice's run is not his
        bob.get_by_text("Signed in as bob · editor").wait_for()
        assert not disabled(bob, "start_training")
        assert disabled(bob, "delete_run") and disabled(bob, "rename_run")
        bob.get_by_text("this one belongs to alice").first.wait_for()
        bob.context.close()

        for user in ("alice", "ada"):  # the owner, and an admin
            page = visit(chromium, team_server, user)
            assert not disabled(page, "delete_run") and not disabled(page, "rename_run"), user
            page.context.close()
        chromium.close()
