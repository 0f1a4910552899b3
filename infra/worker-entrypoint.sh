#!/bin/sh
# Before any work: point the project's DVC cache at the state volume (it survives the container), configure
# the DVC remote from the environment (LLMOPS_DVC_REMOTE_URL, LLMOPS_S3_ENDPOINT_URL, as every run does),
# and pull the data of the project's dvc.lock, so a fresh container starts where the last run left off
# instead of rerunning every stage. Then run the command (a Prefect worker, a flow run, a Dask worker).
set -eu
cd "${LLMOPS_PROJECT_DIR:-/app}"
python - <<'PY'
from pathlib import Path

from llmops.config import Settings
from llmops.runtime import prepare_environment
from llmops.versioning import configure_remote

settings = Settings()
prepare_environment(settings)
print("DVC remote:", configure_remote(Path.cwd(), settings))  # rewrites .dvc/config.local: before the cache dir
PY
mkdir -p "${LLMOPS_HOME:-/state}/dvc-cache"
python -m dvc cache dir --local "${LLMOPS_HOME:-/state}/dvc-cache"
if [ -f dvc.lock ] && [ "${LLMOPS_SKIP_PULL:-0}" != "1" ]; then
  # Outputs not on the remote (push: false personal data) are left for their stages to rebuild.
  python -m dvc pull --allow-missing || echo "dvc pull failed: runs will pull (or rebuild) what they need" >&2
fi
exec "$@"
