# Rapport's CLI, for the docker-compose route: the worker, the collector, the read API.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
# Every package pyproject.toml installs: the CLI loads them all (`rapport bench` included,
# through its entry point). tests/unit/test_compose_file.py keeps this list in step.
COPY schemas schemas
COPY producers producers
COPY streams streams
COPY projections projections
COPY privacy privacy
COPY infra infra
COPY collector collector
COPY readapi readapi
COPY observability observability
COPY bench bench
RUN pip install --no-cache-dir .
ENTRYPOINT ["rapport"]
CMD ["worker"]
