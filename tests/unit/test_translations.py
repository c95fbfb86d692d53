"""The committed translations are complete and compiled: every .mo matches its .po, no entry is empty or fuzzy,
placeholders survive translation, and every word the pages mark is in every catalogue (run
scripts/update_translations.sh after adding one). No browser, no network."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from service.web import i18n

WEB = Path(i18n.__file__).parent
TRANSLATIONS = WEB / "translations"
TRANSLATED = [locale for locale in i18n.LOCALES if locale != i18n.DEFAULT_LOCALE]
# {name} in the scripts' and the status copy's words, %(name)s in the templates'.
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")


def catalogue(locale: str) -> Catalog:
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=locale)


def compiled(locale: str) -> Catalog:
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo", "rb") as mo:
        return read_mo(mo)


def _plain(text: object) -> object:
    """A message id or string as one shape: plural forms come back as lists from .mo files, tuples from .po."""
    return tuple(text) if isinstance(text, list | tuple) else text


def entries(found: Catalog) -> dict[object, object]:
    return {_plain(message.id): _plain(message.string) for message in found if message.id}


def marked_words() -> set[object]:
    """What pybabel extract finds with the project's mapping and keywords (scripts/update_translations.sh)."""
    with open(WEB / "babel.cfg") as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, **i18n.SCRIPT_KEYWORDS}
    return {message for _file, _line, message, _comments, _context
            in extract_from_dir(str(WEB), method_map, options_map, keywords=keywords)}


def test_every_offered_language_has_a_catalogue() -> None:
    assert TRANSLATED, "English and at least one more language"
    for locale in TRANSLATED:
        assert (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").is_file()


@pytest.mark.parametrize("locale", TRANSLATED)
def test_the_committed_mo_is_the_compiled_po(locale: str) -> None:
    source = catalogue(locale)
    in_memory = BytesIO()
    write_mo(in_memory, source)
    in_memory.seek(0)
    assert entries(read_mo(in_memory)) == entries(compiled(locale)), \
        f"{locale}: messages.mo is stale; run scripts/update_translations.sh"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_no_entry_is_empty_or_fuzzy(locale: str) -> None:
    source = catalogue(locale)
    fuzzy = [message.id for message in source if message.id and message.fuzzy]
    empty = [message.id for message in source if message.id and not all(
        message.string if isinstance(message.string, tuple) else (message.string,))]
    assert not fuzzy, f"{locale}: fuzzy entries {fuzzy}"
    assert not empty, f"{locale}: untranslated entries {empty}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_placeholders_survive_translation(locale: str) -> None:
    for message in catalogue(locale):
        if not message.id:
            continue
        originals = message.id if isinstance(message.id, tuple) else (message.id,)
        translations = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = {name for text in originals for name in PLACEHOLDER.findall(text)}
        for translation in translations:
            assert set(PLACEHOLDER.findall(translation)) == wanted, f"{locale}: {message.id!r} -> {translation!r}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_marked_word_is_in_the_catalogue(locale: str) -> None:
    known = set(entries(catalogue(locale)))
    missing = sorted(map(str, marked_words() - known))
    assert not missing, f"{locale}: not in messages.po (run scripts/update_translations.sh): {missing}"
