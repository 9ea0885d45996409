"""The doors' pages: the login form and a refused display token, every value escaped."""

from __future__ import annotations

from flask import Response
from markupsafe import escape

from layouts.i18n import Lang, t


def page(
    city: str, lang: Lang, csrf: str, next_path: str, error: str = "", status: int = 200
) -> Response:
    """The login form; every value is escaped."""
    other: Lang = "en" if lang == "vi" else "vi"
    nxt = escape(next_path)
    message = f'<p class="login-error" role="alert">{escape(error)}</p>' if error else ""
    html = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(t("login.title", lang))} · IOC {escape(city)}</title>
<link rel="stylesheet" href="/assets/ioc.css"><link rel="stylesheet" href="/assets/ioc_login.css">
</head><body class="login-body">
<main class="login-card">
<div class="city">{escape(city)}</div>
<h1 class="app-title">{escape(t("app.title", lang))}</h1>
<form method="post" action="/login" class="login-form">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<input type="hidden" name="next" value="{nxt}">
<input type="hidden" name="lang" value="{lang}">
<label>{escape(t("login.user", lang))}
<input name="username" autocomplete="username" required maxlength="64" autofocus></label>
<label>{escape(t("login.password", lang))}
<input name="password" type="password" autocomplete="current-password" required
 maxlength="1024"></label>
{message}
<button type="submit" class="login-submit">{escape(t("login.submit", lang))}</button>
</form>
<a class="login-lang" href="/login?lang={other}&amp;next={nxt}">{escape(t("lang.toggle", lang))}</a>
</main></body></html>"""
    return Response(html, status=status, mimetype="text/html")


def refused_display(city: str, lang: Lang) -> Response:
    """What a display token that is not (or no longer) valid gets: 403, in the doors' style."""
    return Response(
        f"<!doctype html><title>IOC {escape(city)}</title>"
        '<link rel="stylesheet" href="/assets/ioc.css">'
        '<link rel="stylesheet" href="/assets/ioc_login.css">'
        f'<body class="login-body"><main class="login-card"><div class="city">{escape(city)}</div>'
        f'<p class="login-error">{escape(t("display.invalid", lang))}</p></main></body>',
        status=403,
        mimetype="text/html",
    )
