#!/usr/bin/env bash
# The pages' translations (Flask-Babel): finds every marked word (service/web/babel.cfg: gettext / lazy_gettext
# in Python, _("…") in the templates, V.t / V.tn in the scripts), merges new and changed words into each
# language's messages.po (new ones empty, to be translated), and compiles the .mo files the service reads.
# Commit the .po and .mo files; tests/unit/test_translations.py fails while a word is untranslated or fuzzy.
#
#   scripts/update_translations.sh          # refresh every language in service/web/translations/
#   scripts/update_translations.sh fr       # also start French (translations/fr/LC_MESSAGES/messages.po)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pybabel="$root/.venv/bin/pybabel"
translations="$root/service/web/translations"
template="$(mktemp --suffix=.pot)"
trap 'rm -f "$template"' EXIT

[ -x "$pybabel" ] || { echo "$pybabel is missing: run make install (Babel comes with flask-babel)" >&2; exit 1; }
cd "$root"
"$pybabel" -q extract -F service/web/babel.cfg -k _l -k t -k tn:1,2 --add-location=file --sort-by-file \
  --no-wrap --project="VOLTA Lightning" -o "$template" service/web
for locale in "$@"; do
  if [ ! -f "$translations/$locale/LC_MESSAGES/messages.po" ]; then
    "$pybabel" init --no-wrap -i "$template" -d "$translations" -l "$locale"
    echo "Started $locale: translate $translations/$locale/LC_MESSAGES/messages.po, add \"$locale\" to" \
      "LANGUAGES in service/web/i18n.py, and run this script again."
  fi
done
# No fuzzy matching: a changed English text comes back empty instead of with a guessed, wrong translation.
"$pybabel" -q update --no-wrap --no-fuzzy-matching --ignore-obsolete -i "$template" -d "$translations"
"$pybabel" compile --statistics -d "$translations"
