# One image for every service; the command picks the process (railway/*.json,
# docker-compose.yml, Procfile). Runtime code only, installed from its wheel (the SQL
# inside it), run as a user of its own; no tests, benchmarks, dev stack or embedded
# PostgreSQL (production always has DATABASE_URL).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/ms8
WORKDIR /src
# The dependencies in a layer of their own, rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/ms8/bin/pip install -r requirements.txt
COPY README.md ./
COPY sql ./sql
COPY shared ./shared
COPY api ./api
COPY worker ./worker
COPY scheduler ./scheduler
COPY analytics ./analytics
COPY stub ./stub
COPY ms8_client ./ms8_client
# A normal (not editable) install: the wheel is built and installed into the venv.
RUN /opt/ms8/bin/pip install --no-deps .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/ms8/bin:$PATH \
    MS8_ENV=production
RUN useradd --system --uid 10001 --create-home --home-dir /srv/ms8 \
    --shell /usr/sbin/nologin ms8
COPY --from=build /opt/ms8 /opt/ms8
WORKDIR /srv/ms8
USER ms8
# Whichever process runs: the api's /health/live, a worker's metrics port; the others
# are alive while they run (shared/healthcheck.py).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "shared.healthcheck"]
CMD ["python", "-m", "api"]
