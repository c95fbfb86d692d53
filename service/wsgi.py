"""WSGI entry point for production, one process per core behind nginx:

    VOLTA_RUN_WORKER=false gunicorn --worker-class gevent --workers 2 --worker-connections 10000 \
        --bind 127.0.0.1:8000 --graceful-timeout 5 service.wsgi:app

gevent (not threads): each open checkout page holds an event stream for minutes, and a greenlet costs a few
kilobytes where a thread costs a stack and a slot of `--threads`. gunicorn patches the standard library before
it loads this module; psycopg 3 then waits on the database cooperatively, redis-py and httpx use the patched
sockets, and the Starknet client's event loop runs in a greenlet of its own. Run the settlement worker apart
(`python -m service.worker`, any number of them): it keeps real threads and is not meant for gevent.
"""

import logging

from service import create_app
from service.config import load_settings

settings = load_settings()
logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
if settings.run_worker:
    # A settlement worker inside a gevent process would run its threads as greenlets it was not written for, and
    # one per gunicorn process besides: refuse, and say what to run instead.
    raise SystemExit("service.wsgi serves the API only: set VOLTA_RUN_WORKER=false and run the settlement worker "
                     "apart (python -m service.worker), or run `python -m service` for one process that does both")
app = create_app(settings)
