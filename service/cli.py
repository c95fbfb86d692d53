"""`volta-service` (or `python -m service`): the API and the worker in one process, on 127.0.0.1 (gunicorn in
production, see service/wsgi.py). Settings come from VOLTA_* variables, VOLTA_CONFIG (a TOML file) or
VOLTA_REGTEST_STATE (a regtest network's state.json)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from service.config import Settings, load_settings

EXIT_FAILED = 1
EXIT_USAGE = 2  # as argparse's own: the command line or the settings are wrong


def program_name() -> str:
    """`volta-service` when run as the installed script, `python -m service` when run as a module."""
    return "python -m service" if Path(sys.argv[0]).name == "__main__.py" else "volta-service"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=program_name(), description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                     epilog="exit codes: 1 failed (a dependency down, the port taken), "
                                            "2 usage error (options or settings not valid)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (keep it loopback: put a TLS proxy such as nginx in front)")
    parser.add_argument("--port", type=int, default=5000, help="the port to listen on")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ValueError as exc:  # SettingsError: names the field and the rule, never the value
        return _fail(EXIT_USAGE, str(exc))
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(settings, args.host, args.port)
    except OperationalError as exc:
        return _fail(EXIT_FAILED, f"the database at {_safe_url(settings.database_url)} is not answering "
                                  f"({_first_line(exc.orig or exc)}): start it, or set VOLTA_DATABASE_URL")
    except ValueError as exc:  # a setting the container cannot use, e.g. no Lightning node configured
        return _fail(EXIT_USAGE, str(exc))
    except OSError as exc:  # a file the settings name (certificate, macaroon, key), or the port to listen on
        if exc.filename is None:
            return _fail(EXIT_FAILED, f"cannot start: {exc.strerror or exc}")
        return _fail(EXIT_FAILED, f"cannot read {exc.filename!r} ({exc.strerror or exc}): check the files the "
                                  f"settings name (VOLTA_LND_TLS_CERT, VOLTA_LND_MACAROON, "
                                  f"VOLTA_OPERATOR_PRIVATE_KEY_FILE)")
    return 0


def serve(settings: Settings, host: str, port: int) -> None:
    from service import create_app  # imported here so `--help` answers without loading the whole service

    app = create_app(settings)
    app.run(host=host, port=port, threaded=True, use_reloader=False)


def _fail(code: int, message: str) -> int:
    print(f"{program_name()}: error: {message}", file=sys.stderr)
    return code


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(the configured URL)"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
