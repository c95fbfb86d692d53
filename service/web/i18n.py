"""The pages' language: the reader's choice (the `lang` cookie set by the page's switch), else the browser's
Accept-Language, else English. Words are marked with gettext (`_()` in templates) and translated in
service/web/translations/<locale>/LC_MESSAGES/messages.po (Flask-Babel); scripts/update_translations.sh
extracts, updates and compiles them.

Numbers are written in the reader's format here (Babel's CLDR data) and in the scripts (Intl with the page's
`<html lang>`); the scripts' words come from this module too (`script_words`), rendered into every page as JSON.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from babel import Locale
from babel.messages.extract import extract_from_file
from babel.numbers import format_decimal
from flask import Blueprint, Flask, Response, has_request_context, redirect, request
from flask.typing import ResponseReturnValue
from flask_babel import Babel, get_locale, gettext, ngettext

DEFAULT_LOCALE = "en"
# Every locale with a catalogue in translations/, and its name in its own language: the switch offers these.
LANGUAGES = {"en": "English", "de": "Deutsch"}
LOCALES = tuple(LANGUAGES)
LANGUAGE_COOKIE = "lang"
LANGUAGE_COOKIE_MAX_AGE_S = 365 * 24 * 3600
STATIC = Path(__file__).parent / "static"
# How the scripts mark their words: V.t("text", {name: value}) and V.tn("singular", "plural", count, {...}).
SCRIPT_KEYWORDS: dict[str, Any] = {"t": None, "tn": (1, 2)}

blueprint = Blueprint("language", __name__)


def select_locale() -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE


def current_locale() -> Locale:
    """The request's locale; English outside a request (scripts, unit tests)."""
    locale = get_locale() if has_request_context() else None
    return locale or Locale.parse(DEFAULT_LOCALE)


def number(value: Decimal | int | float, pattern: str) -> str:
    """A number in the reader's format with a CLDR pattern ("#,##0.00": 1,000.50 in English, 1.000,50 in German)."""
    return format_decimal(value, format=pattern, locale=current_locale(), decimal_quantization=True)


@cache
def script_messages() -> tuple[str | tuple[str, str], ...]:
    """The words the scripts mark (static/*.js), read from the scripts themselves with the same extractor
    pybabel uses, so a new V.t("…") needs no second list here."""
    found: dict[str | tuple[str, str], None] = {}
    for script in sorted(STATIC.glob("*.js")):
        for _line, message, _comments, _context in extract_from_file("javascript", script, SCRIPT_KEYWORDS):
            found[message if isinstance(message, str) else (message[0], message[1])] = None
    return tuple(found)


def script_words() -> dict[str, Any]:
    """What the scripts show, in the reader's language: English text -> translation, and for counted words
    English singular -> {"one": ..., "other": ...} (German and English have these two plural forms; the
    scripts pick one with Intl.PluralRules)."""
    words: dict[str, Any] = {}
    for message in script_messages():
        if isinstance(message, str):
            words[message] = gettext(message)
        else:
            singular, plural = message
            words[singular] = {"one": ngettext(singular, plural, 1), "other": ngettext(singular, plural, 2)}
    return words


def same_site_path(target: str) -> str:
    """`target` if it is a path on this site, else "/": the switch never redirects anywhere else."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(char) < 32 for char in target) or "\\" in target:
        return "/"
    return target


@blueprint.post("/language")
def choose_language() -> ResponseReturnValue:
    """The language switch: remembers the choice in a cookie and goes back to the page it was made on."""
    chosen = request.form.get("lang", "")
    response = redirect(same_site_path(request.form.get("next", "/")), code=303)
    if chosen in LOCALES:
        response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=LANGUAGE_COOKIE_MAX_AGE_S, path="/",
                            samesite="Lax", secure=request.is_secure, httponly=True)
    return response


def _here() -> str:
    """The current page's path and query, for the switch to come back to."""
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def _template_helpers() -> dict[str, Any]:
    return {"locale": str(current_locale()), "languages": LANGUAGES, "script_words": script_words, "here": _here}


def _vary_on_language(response: Response) -> Response:
    """Pages differ by Accept-Language and the language cookie: shared caches must keep them apart."""
    if response.mimetype == "text/html":
        response.vary.update(("Accept-Language", "Cookie"))
    return response


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "web/translations")
    Babel(app, locale_selector=select_locale)
    app.context_processor(_template_helpers)
    app.after_request(_vary_on_language)
    app.register_blueprint(blueprint)
