"""WSGI entry point for production: `gunicorn --bind 127.0.0.1:8000 --threads 16 service.wsgi:app`.

Run gunicorn with VOLTA_RUN_WORKER=false and one `python -m service.worker` beside it, so that several
gunicorn processes do not each run a settlement worker.
"""

from service import create_app

app = create_app()
