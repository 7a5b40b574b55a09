"""Who may do what on a shared server: roles from settings, and what each role may do to which run.

Off unless configured (``make run`` on a laptop: everyone may do everything). On a team server an identity
comes from Streamlit's ``st.login`` (``st.user``) when it is configured, or from a header that an
authenticating proxy sets (``CNN_STUDIO_USER_HEADER``, e.g. ``X-Forwarded-User`` as oauth2-proxy sets it).
The header is trusted only when that setting names it: anyone can send any header to a server that is not
behind such a proxy, so never set it on a server reachable without the proxy.

Roles: an **admin** may do everything to every run; an **editor** trains, reads the allowed server folders,
and renames, deletes and stops the runs they own; a **viewer** browses runs, evaluates, tries images and
downloads exports, and changes nothing — the mode for showing work to stakeholders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from core.errors import StudioError
from core.i18n import N_, _

USER_HEADER_ENV = "CNN_STUDIO_USER_HEADER"
ADMINS_ENV = "CNN_STUDIO_ADMINS"
EDITORS_ENV = "CNN_STUDIO_EDITORS"
VIEWERS_ENV = "CNN_STUDIO_VIEWERS"
DEFAULT_ROLE_ENV = "CNN_STUDIO_DEFAULT_ROLE"
SETTINGS = (USER_HEADER_ENV, ADMINS_ENV, EDITORS_ENV, VIEWERS_ENV, DEFAULT_ROLE_ENV)


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


class Action(StrEnum):
    """What a visitor may be refused. Browsing, evaluating, trying images and downloading are for everyone."""

    TRAIN = "train"
    READ_SERVER_FOLDERS = "read server folders"
    RENAME = "rename"
    DELETE = "delete"
    STOP = "stop"

    @property
    def on_a_run(self) -> bool:
        return self in (Action.RENAME, Action.DELETE, Action.STOP)

    def text(self) -> str:
        """The action as a person reads it, in the current language (a verb phrase)."""
        return _(ACTION_NAMES[self])


# What people read for a role and an action (the values stay the settings' words).
ROLE_NAMES = {"admin": N_("admin"), "editor": N_("editor"), "viewer": N_("viewer")}
ACTION_NAMES = {
    "train": N_("train"),
    "read server folders": N_("read server folders"),
    "rename": N_("rename"),
    "delete": N_("delete"),
    "stop": N_("stop"),
}


def role_text(role: Role | str) -> str:
    """A role as a person reads it, in the current language."""
    return _(ROLE_NAMES.get(str(role), str(role)))


def _names(text: str | None) -> frozenset[str]:
    return frozenset(name.strip() for name in (text or "").split(",") if name.strip())


@dataclass(frozen=True)
class AccessPolicy:
    """Roles as configured by the environment. ``enabled`` is False when nothing is configured."""

    enabled: bool = False
    user_header: str | None = None
    admins: frozenset[str] = frozenset()
    editors: frozenset[str] = frozenset()
    viewers: frozenset[str] = frozenset()
    default_role: Role = Role.EDITOR  # the role of a known visitor on no list
    login: bool = False  # st.login is configured (secrets [auth])

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, login: bool = False) -> AccessPolicy:
        env = os.environ if environ is None else environ
        raw_default = env.get(DEFAULT_ROLE_ENV, Role.EDITOR).strip().lower()
        try:
            default = Role(raw_default)
        except ValueError:
            raise StudioError(
                _("{setting} is not a role: use one of {roles}.").format(
                    setting=f"{DEFAULT_ROLE_ENV}={raw_default!r}", roles=", ".join(r.value for r in Role)
                )
            ) from None
        return cls(
            enabled=login or any(env.get(name, "").strip() for name in SETTINGS),
            user_header=env.get(USER_HEADER_ENV, "").strip() or None,
            admins=_names(env.get(ADMINS_ENV)),
            editors=_names(env.get(EDITORS_ENV)),
            viewers=_names(env.get(VIEWERS_ENV)),
            default_role=default,
            login=login,
        )

    def role_of(self, user: str | None) -> Role:
        """Admins, viewers and editors by list; other known visitors get the default role; an anonymous
        visitor on a server with roles is a viewer."""
        if not self.enabled:
            return Role.ADMIN
        if user is None:
            return Role.VIEWER
        if user in self.admins:
            return Role.ADMIN
        if user in self.viewers:
            return Role.VIEWER
        if user in self.editors:
            return Role.EDITOR
        return self.default_role

    def can(self, user: str | None, action: Action, owner: str | None = None) -> bool:
        role = self.role_of(user)
        if role == Role.ADMIN:
            return True
        if role == Role.VIEWER:
            return False
        return not action.on_a_run or (owner is not None and owner == user)

    def refusal(self, user: str | None, action: Action, owner: str | None = None) -> str:
        """Why ``action`` is refused, and what to do about it."""
        role = self.role_of(user)
        if role == Role.VIEWER:
            if user is None:
                message = _(
                    "You are an anonymous visitor, a viewer on this server: viewers cannot {action}. "
                    "To {action}, sign in."
                )
            else:
                message = _(
                    "You are '{user}', a viewer on this server: viewers cannot {action}. To {action}, ask an admin "
                    "to add you to {editors} (or {admins})."
                )
            return message.format(user=user, action=action.text(), editors=EDITORS_ENV, admins=ADMINS_ENV)
        if owner:
            message = _(
                "You are '{user}', an editor: you can {action} only the runs you started, and this one belongs to "
                "{owner}. Ask its owner or an admin ({admins})."
            )
        else:
            message = _(
                "You are '{user}', an editor: you can {action} only the runs you started, and this one belongs to "
                "nobody recorded (an older run). Ask an admin ({admins})."
            )
        return message.format(user=user, action=action.text(), owner=owner, admins=ADMINS_ENV)

    def check(self, user: str | None, action: Action, owner: str | None = None) -> None:
        if not self.can(user, action, owner):
            raise StudioError(self.refusal(user, action, owner))
