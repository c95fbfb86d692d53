"""`python -m service`: the API and the worker in one process, on 127.0.0.1 (gunicorn in production)."""

from __future__ import annotations

import argparse
import logging

from service import create_app
from service.config import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
