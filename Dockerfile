# The service's image: the API under gunicorn (VOLTA_RUN_WORKER=false) or, with another command, the worker
# (`python -m service.worker`). docker-compose.regtest.yml runs both behind nginx on PostgreSQL and Redis.
# Not built here (this machine has no Docker engine); the harness runs the same processes from source.
FROM python:3.11-slim

# The image's command serves the API only (service.wsgi refuses to start a worker); the worker's container runs
# `python -m service.worker`, which this variable does not stop.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 VOLTA_RUN_WORKER=false
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install '.[production]' && useradd --system --home /app volta
USER volta

# Inside the container network only; the compose file publishes nothing of it on the host.
EXPOSE 8000
# One gevent worker per core: each open checkout page's event stream is a greenlet, not a thread (README, scale-out).
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--worker-class", "gevent", "--workers", "2", \
     "--worker-connections", "10000", "--graceful-timeout", "5", "service.wsgi:app"]
