# LAMPID Hub: one image for every role (API, worker, scheduler, simulators); the command
# decides. Slim Python, the locked dependencies, unixODBC for the SQL Server source, and a
# user without privileges. Installed in place (-e): the hub reads registry/ beside hub/.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUB_DATA_DIR=/var/lib/hub \
    HUB_LOG_FORMAT=json

RUN apt-get update \
    && apt-get install -y --no-install-recommends unixodbc tdsodbc \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md routes.yaml ./
COPY hub ./hub
COPY adapters ./adapters
COPY registry ./registry
# Bytecode compiled once here: the hub user cannot write __pycache__, and every process
# would otherwise compile the hub from source at start (about 150 ms).
RUN pip install --no-deps -e . \
    && python -m compileall -q hub adapters \
    && useradd --system --uid 10001 --home-dir /var/lib/hub --create-home hub

USER hub
EXPOSE 8000 9101
ENTRYPOINT ["hub"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--no-dispatcher"]
