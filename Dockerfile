# One image for every service; the command picks the process (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY api ./api
COPY worker ./worker
COPY scheduler ./scheduler
COPY analytics ./analytics
COPY ms8_client ./ms8_client
COPY stub ./stub
COPY sql ./sql
COPY devstack ./devstack
COPY bench ./bench
RUN pip install -e .
# The embedded PostgreSQL is for machines without a database; the image always has one.
ENV MS8_ENV=production
CMD ["python", "-m", "api"]
