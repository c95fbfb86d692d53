# The service's image: the API under gunicorn (VOLTA_RUN_WORKER=false) or, with another command, the worker
# (`python -m service.worker`). docker-compose.regtest.yml runs both behind nginx on PostgreSQL and Redis.
# Not built here (this machine has no Docker engine); the harness runs the same processes from source.
# starknet-crypto-py (the mint lanes' signer) is published as source only: it is built into a wheel here, with
# Rust's toolchain copied from the official image, so the image that runs has no compiler in it.
FROM python:3.11-slim AS wheels
COPY --from=rust:1-slim /usr/local/cargo /usr/local/cargo
COPY --from=rust:1-slim /usr/local/rustup /usr/local/rustup
ENV CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup PATH=/usr/local/cargo/bin:$PATH PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip wheel --wheel-dir /wheels '.[production]'

FROM python:3.11-slim

# The image's command serves the API only (service.wsgi refuses to start a worker); the worker's container runs
# `python -m service.worker`, which this variable does not stop.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 VOLTA_RUN_WORKER=false
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY --from=wheels /wheels /wheels
RUN pip install --no-index --find-links /wheels '.[production]' && rm -rf /wheels && useradd --system --home /app volta
USER volta

# Inside the container network only; the compose file publishes nothing of it on the host.
EXPOSE 8000
# One gevent worker per core: each open checkout page's event stream is a greenlet, not a thread (README, scale-out).
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--worker-class", "gevent", "--workers", "2", \
     "--worker-connections", "10000", "--graceful-timeout", "5", "service.wsgi:app"]
