# syntax=docker/dockerfile:1
# Timebank service image: `timebank serve` against an external PostgreSQL named by
# TIMEBANK_DATABASE_URL. Migrations are their own step: `docker run … timebank db upgrade`.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/timebank
COPY pyproject.toml README.md ./
COPY timebank ./timebank
COPY schema ./schema
RUN /opt/timebank/bin/pip install .

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/timebank/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TIMEBANK_HOST=0.0.0.0 \
    TIMEBANK_PORT=8000
RUN groupadd --system --gid 10001 timebank && useradd --system --create-home --uid 10001 --gid 10001 timebank
COPY --from=build /opt/timebank /opt/timebank
USER 10001:10001
WORKDIR /home/timebank
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"]
CMD ["timebank", "serve"]
