"""The pages' language: the reader's choice (the `lang` cookie set by the page's switch), else the browser's
Accept-Language, else English. Words are marked with gettext (`_()` in templates) and translated in
service/web/translations/<locale>/LC_MESSAGES/messages.po (Flask-Babel)."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import Babel

DEFAULT_LOCALE = "en"
LOCALES = ("en",)  # every locale with a catalogue in translations/; the switch offers these
LANGUAGE_COOKIE = "lang"


def select_locale() -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "web/translations")
    Babel(app, locale_selector=select_locale)
