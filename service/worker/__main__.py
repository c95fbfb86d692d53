"""`python -m service.worker`: the worker alone, for deployments that serve the API elsewhere.

Kept apart from the Worker class so the composition root (service.container) and the worker do not import
each other."""

from __future__ import annotations

import logging
import threading

from service.config import load_settings
from service.container import build_container

log = logging.getLogger("volta.worker")


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    container = build_container(settings, with_worker=True)
    assert container.worker is not None
    container.worker.start()
    log.info("worker running as %s; Ctrl-C to stop", container.worker_id)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        container.close()


if __name__ == "__main__":
    main()
