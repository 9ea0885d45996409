"""Pure builders of the frame: the signed-in badge and the page a refused caller gets."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from ioc.core.auth.principals import Principal
from layouts.i18n import Lang, t


def user_badge(who: Principal, lang: Lang, csrf: str) -> list[Any]:
    """Who is signed in (role and scope) and a logout button; the demo says it has no login."""
    if who.kind == "open":
        return [html.Span(t("auth.off", lang), className="auth-off")]
    scope = (
        t("scope.city", lang) if who.city_wide else t("scope.wards", lang, n=len(who.wards or ()))
    )
    parts: list[Any] = [
        html.Span(who.name, className="user-name"),
        html.Span(f"{t('role.' + who.role, lang)} · {scope}", className="user-role"),
    ]
    if who.kind == "user":
        parts.append(
            html.Form(
                [
                    dcc.Input(type="hidden", name="csrf", value=csrf),
                    html.Button(t("login.logout", lang), type="submit", className="logout"),
                ],
                method="POST",
                action="/logout",
            )
        )
    return parts


def denied(lang: Lang) -> Any:
    """What a page the caller may not see shows instead, with the way back to the wall."""
    return html.Div(
        [dcc.Link(t("ward.back", lang), href="/"), html.P(t("auth.denied", lang))],
        className="denied",
    )


def ward_path(path: str) -> str | None:
    """The ward code a /ward/<code> path asks for (bounded), None for any other path."""
    if not path.startswith("/ward/"):
        return None
    return path.removeprefix("/ward/").strip("/")[:40]
