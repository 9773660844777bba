"""The read-only web dashboard: a Flask app over the releases a member's node holds.

Edge code. ``create_app`` takes the function that reads and verifies the releases; it is
called once per request, and the page is built from one ``view.index`` of its answer. Only
GET (and HEAD) are served; every response carries a strict Content-Security-Policy (no
inline script or style: the charts read their data from a JSON element), and an unknown
commodity, entry or page is a plain 404 page, never a traceback. ``crises`` reads the crises
declared in the signed policy the config sees, for the crisis page; none by default.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

import flask
from werkzeug.exceptions import HTTPException, NotFound

from dashboard import crisis, i18n
from dashboard.charts import component_name, sections
from dashboard.view import Picture, alert_rows, chain, grids, index
from scfed.errors import ScfedError
from scfed.release import Alert, Release
from scfed.wire.policy import Crisis

Load = Callable[[], tuple[Sequence[Release], Sequence[Alert]]]
Crises = Callable[[], Sequence[Crisis]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
COOKIE = "lang"
YEAR = 365 * 24 * 3600
ALERTS_PER_PAGE = 100
_log = logging.getLogger(__name__)


def _no_crises() -> Sequence[Crisis]:
    return ()


def create_app(load: Load, *, who: str, crises: Crises = _no_crises) -> flask.Flask:
    """The dashboard over the releases and alerts ``load`` returns, for the member ``who``,
    and the crises ``crises`` returns (those the signed policy declares)."""
    app = flask.Flask(__name__)
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600
    app.jinja_env.autoescape = True
    pages: dict[str, Callable[..., str]] = {
        "/": lambda: _chain_page(load),
        "/grid": lambda: _grid_page(load, None),
        "/grid/<name>": lambda name: _grid_page(load, name),
        "/commodity/<path:key>": lambda key: _commodity_page(load, key),
        "/alerts": lambda: _alerts_page(load),
        "/crisis": lambda: _crisis_page(load, crises),
    }
    for rule, view in pages.items():
        endpoint = rule.strip("/").split("/")[0] or "chain"
        endpoint += "_one" if rule == "/grid/<name>" else ""
        app.add_url_rule(rule, endpoint, view, methods=["GET"], provide_automatic_options=False)
    app.before_request(_choose_language)
    app.after_request(_headers)
    app.context_processor(lambda: _context(who))
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _failure)
    return app


def _picture(load: Load) -> Picture:
    releases, alerts = load()
    return index(releases, alerts)


def _chain_page(load: Load) -> str:
    return flask.render_template("chain.html", chain=chain(_picture(load)))


def _grid_page(load: Load, name: str | None) -> str:
    picture = _picture(load)
    if name is not None and name not in picture.releases:
        raise NotFound
    tables = grids(picture, name)
    if name is not None and not tables:
        raise NotFound  # an entry of another metric has no lights
    return flask.render_template("grid.html", grids=tables, one=name)


def _commodity_page(load: Load, key: str) -> str:
    picture = _picture(load)
    if key not in picture.commodities():
        raise NotFound
    lang = flask.g.lang
    found = sections(picture, key, lang)
    charts = [chart for section in found for chart in section.charts]
    light = next((s.lights for s in found if s.lights), ())
    return flask.render_template(
        "commodity.html", key=key, sections=found, charts=charts, lights=light
    )


def _alerts_page(load: Load) -> str:
    rows = alert_rows(_picture(load))
    pages = max(1, -(-len(rows) // ALERTS_PER_PAGE))
    asked = flask.request.args.get("page", "1")
    if not asked.isdigit() or not 1 <= int(asked) <= pages:
        raise NotFound
    page = int(asked)
    first = (page - 1) * ALERTS_PER_PAGE
    shown = rows[first : first + ALERTS_PER_PAGE]
    return flask.render_template(
        "alerts.html", rows=shown, page=page, pages=pages, first=first + 1, total=len(rows)
    )


def _crisis_page(load: Load, crises: Crises) -> str:
    today = dt.datetime.now(dt.UTC).date()
    shown = crisis.page(_picture(load), crises(), today, flask.g.lang)
    return flask.render_template("crisis.html", page=shown)


def _choose_language() -> None:
    asked = flask.request.args.get("lang")
    accepted = flask.request.accept_languages.best_match(i18n.LANGUAGES)
    flask.g.lang = i18n.choose(asked, flask.request.cookies.get(COOKIE), accepted)
    flask.g.remember = asked in i18n.LANGUAGES


def _headers(response: flask.Response) -> flask.Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"  # members' figures stay off disks
        response.vary.update(("Accept-Language", "Cookie"))
    if flask.g.get("remember"):
        response.set_cookie(COOKIE, flask.g.lang, max_age=YEAR, httponly=True, samesite="Lax")
    return response


def _context(who: str) -> dict[str, Any]:
    lang: str = flask.g.get("lang", i18n.DEFAULT)
    return {
        "lang": lang, "who": who, "switch": _switch(lang),
        "t": lambda key, **values: i18n.message(lang, key, **values),
        "light_name": lambda light: i18n.light_name(lang, light),
        "reason": lambda text: i18n.reason(lang, text),
        "component": lambda name: component_name(lang, name),
        "stage": lambda name: i18n.message(lang, f"stage.{name}"),
        "region": lambda name: i18n.optional(lang, f"region.{name}", name),
        "label": lambda key: _label(lang, key),
        "week": i18n.iso_week, "number": i18n.number, "signed": i18n.signed,
    }  # fmt: skip


def _switch(lang: str) -> str:
    """This page in the other language."""
    request = flask.request
    other = "ja" if lang == "en" else "en"
    if request.endpoint is None or request.endpoint == "static":
        return f"{request.path}?lang={other}"
    values: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict()}
    values["lang"] = other
    return flask.url_for(request.endpoint, **values)


def _label(lang: str, key: str) -> str:
    """A commodity's short name on its tile: class, node and wafer."""
    _, product, node, wafer, _ = key.split("/")
    parts = [i18n.optional(lang, f"class.{product}", product), node, wafer]
    return " ".join(p for p in parts if p != "na")


def _http_error(error: HTTPException) -> tuple[str, int]:
    code = error.code or 500
    text = _message(f"error.{code}") if code in (404, 405) else str(error.description or code)
    return flask.render_template("error.html", message=text), code


def _failure(error: Exception) -> tuple[str, int]:
    if isinstance(error, ScfedError):
        _log.error("dashboard: the releases could not be read: %s", error)
    else:
        _log.exception("dashboard: a page failed")
    return flask.render_template("error.html", message=_message("error.500")), 500


def _message(key: str) -> str:
    return i18n.message(flask.g.get("lang", i18n.DEFAULT), key)
