"""The visitor's identity and role on the pages: from ``st.user`` (``st.login``) or a trusted proxy header."""

from __future__ import annotations

import streamlit as st

from core.access import AccessPolicy, Action, Role, role_text
from core.data import data_roots
from core.i18n import N_, _


def _login_configured() -> bool:
    """st.login works only with an [auth] section in the secrets; no secrets file means no login."""
    try:
        return "auth" in st.secrets
    except Exception:  # Streamlit raises its own error type when there is no secrets file at all
        return False


def policy() -> AccessPolicy:
    return AccessPolicy.from_env(login=_login_configured())


def current_user() -> str | None:
    """The signed-in user, or the user the configured proxy header names; None when unknown or roles are off."""
    pol = policy()
    if pol.login and st.user.get("is_logged_in"):
        return st.user.get("email") or st.user.get("name")
    if pol.user_header:
        value = (st.context.headers.get(pol.user_header) or "").strip()
        return value or None
    return None


def role() -> Role:
    return policy().role_of(current_user())


def can(action: Action, owner: str | None = None) -> bool:
    return policy().can(current_user(), action, owner)


def refusal(action: Action, owner: str | None = None) -> str:
    return policy().refusal(current_user(), action, owner)


def visitor_roots() -> list[str]:
    """The server folders this visitor may read: the allowed ones for editors and admins, none for viewers."""
    return data_roots() if can(Action.READ_SERVER_FOLDERS) else []


def identity_sidebar() -> None:
    """Who the server thinks you are, and your role (only on a server with roles)."""
    pol = policy()
    if not pol.enabled:
        return
    user = current_user()
    with st.sidebar:
        who = user or _("anonymous")
        st.caption(
            _("Signed in as **{user}** · {role}").format(user=who, role=role_text(pol.role_of(user))), help=_(ROLE_HELP)
        )
        if pol.login and not st.user.get("is_logged_in"):
            st.button(_("Log in"), key="login", on_click=st.login)
        elif pol.login:
            st.button(_("Log out"), key="logout", on_click=st.logout)


ROLE_HELP = N_(
    "Viewers browse runs, evaluate, try images and download exports. Editors also train, read the allowed "
    "server folders, and rename, delete or stop their own runs. Admins may do everything."
)
