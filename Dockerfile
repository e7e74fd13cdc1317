# Rapport's worker and CLI, for the docker-compose route.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY producers producers
COPY streams streams
COPY projections projections
COPY infra infra
RUN pip install --no-cache-dir .
ENTRYPOINT ["rapport"]
CMD ["worker"]
