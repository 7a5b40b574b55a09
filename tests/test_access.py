"""Roles from settings: off by default, admins/editors/viewers by list, owners of runs, messages that say why."""

import pytest

from core.access import AccessPolicy, Action, Role
from core.errors import StudioError

TEAM = {
    "CNN_STUDIO_USER_HEADER": "X-Forwarded-User",
    "CNN_STUDIO_ADMINS": "ada, grace",
    "CNN_STUDIO_VIEWERS": "board",
}


def test_roles_are_off_unless_configured():
    policy = AccessPolicy.from_env({})
    assert not policy.enabled and policy.role_of(None) == Role.ADMIN
    assert all(policy.can(None, action, owner="someone") for action in Action)


def test_team_server_roles_and_owners():
    policy = AccessPolicy.from_env(TEAM)
    assert policy.enabled and policy.user_header == "X-Forwarded-User"
    assert policy.role_of("grace") == Role.ADMIN and policy.role_of("board") == Role.VIEWER
    assert policy.role_of("alice") == Role.EDITOR and policy.role_of(None) == Role.VIEWER
    # an editor trains and manages their own runs only; an admin manages all; a viewer changes nothing
    assert policy.can("alice", Action.TRAIN) and policy.can("alice", Action.READ_SERVER_FOLDERS)
    assert policy.can("alice", Action.DELETE, owner="alice") and not policy.can("alice", Action.DELETE, owner="bob")
    assert not policy.can("alice", Action.STOP, owner=None)  # a run with no recorded owner is the admins'
    assert policy.can("ada", Action.RENAME, owner="bob")
    assert not any(policy.can("board", action, owner="board") for action in Action)
    assert not policy.can(None, Action.TRAIN)


def test_everyone_a_viewer_but_the_listed_editors():
    policy = AccessPolicy.from_env({"CNN_STUDIO_DEFAULT_ROLE": "viewer", "CNN_STUDIO_EDITORS": "alice"})
    assert policy.role_of("alice") == Role.EDITOR and policy.role_of("stakeholder") == Role.VIEWER
    assert policy.user_header is None  # no header is trusted unless one is named


def test_refusals_say_who_why_and_the_fix():
    policy = AccessPolicy.from_env(TEAM)
    viewer = policy.refusal("board", Action.TRAIN)
    assert "'board'" in viewer and "viewer" in viewer and "CNN_STUDIO_EDITORS" in viewer
    assert "sign in" in policy.refusal(None, Action.TRAIN)
    editor = policy.refusal("alice", Action.DELETE, owner="bob")
    assert "editor" in editor and "bob" in editor and "only the runs you started" in editor
    with pytest.raises(StudioError, match="viewers cannot delete"):
        policy.check("board", Action.DELETE, owner="board")
    policy.check("alice", Action.DELETE, owner="alice")


def test_a_wrong_default_role_names_the_setting_and_the_choices():
    with pytest.raises(StudioError, match=r"CNN_STUDIO_DEFAULT_ROLE='boss'.*admin, editor, viewer"):
        AccessPolicy.from_env({"CNN_STUDIO_DEFAULT_ROLE": "boss"})
