"""The OpenAI fine-tuning backend against a local HTTP server that speaks the files + fine_tuning.jobs endpoints.

The server (loopback only) walks each job through validating_files -> queued -> running -> succeeded
(or failed with an error.code), answers one 429 on job creation, lists its models, can refuse a job
(400), and counts what it was asked, so the tests can tell a resumed job from a second, paid one.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmops.config import FinetuneParams, Settings
from llmops.errors import ConfigError, FineTuneError, TrainingDataError
from llmops.finetune.openai_jobs import JobState, OpenAIFineTuner, openai_client
from llmops.reports.training import TrainingReport

STEPS = ["validating_files", "queued", "running", "running", "succeeded"]


class FakeOpenAI:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_next_create_with_429 = True
        self.fail_jobs = False
        self.refuse_jobs = False
        self.models = ["gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14"]

    def job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        status = job["status"]
        return {
            "id": job["id"],
            "object": "fine_tuning.job",
            "created_at": 1,
            "model": job["model"],
            "organization_id": "org-test",
            "result_files": [],
            "seed": job["seed"],
            "status": status,
            "training_file": job["training_file"],
            "validation_file": job["validation_file"],
            "hyperparameters": {"n_epochs": job["n_epochs"]},
            "fine_tuned_model": f"ft:{job['model']}:{job['suffix']}:{job['id']}" if status == "succeeded" else None,
            "trained_tokens": 1234 if status == "succeeded" else None,
            "error": job.get("error"),
        }

    def advance(self, job: dict[str, Any]) -> None:
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return
        job["step"] += 1
        if self.fail_jobs and job["step"] == 2:
            job["status"] = "failed"
            job["error"] = {"code": "invalid_training_file", "message": "line 3: too many tokens", "param": "training_file"}
        else:
            job["status"] = STEPS[min(job["step"], len(STEPS) - 1)]
        if job["status"] == "running":
            step = job["step"]
            data = {"step": step, "train_loss": 2.0 / step, "valid_loss": 2.5 / step}
            job["events"].insert(
                0,
                {
                    "id": f"m-{job['id']}-{step}",
                    "object": "fine_tuning.job.event",
                    "created_at": step,
                    "level": "info",
                    "message": f"Step {step}: training loss={data['train_loss']:.2f}",
                    "type": "metrics",
                    "data": data,
                },
            )
        job["events"].insert(
            0,
            {
                "id": f"ev-{job['id']}-{job['step']}",
                "object": "fine_tuning.job.event",
                "created_at": job["step"],
                "level": "info",
                "message": f"status {job['status']}",
            },
        )


def make_handler(api: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            api.calls.append(f"POST {self.path}")
            if self.path == "/v1/files":
                fid = f"file-{len(api.files) + 1}"
                api.files[fid] = body
                return self._send(
                    200,
                    {
                        "id": fid,
                        "object": "file",
                        "bytes": len(body),
                        "created_at": 1,
                        "filename": "train.jsonl",
                        "purpose": "fine-tune",
                        "status": "processed",
                    },
                )
            if self.path == "/v1/fine_tuning/jobs":
                if api.fail_next_create_with_429:
                    api.fail_next_create_with_429 = False
                    return self._send(
                        429,
                        {"error": {"message": "Rate limit", "type": "requests", "code": "rate_limit_exceeded"}},
                        {"retry-after-ms": "10"},
                    )
                if api.refuse_jobs:
                    return self._send(
                        400,
                        {
                            "error": {
                                "message": "Model gpt-4o-mini-2024-07-18 is not available for fine-tuning",
                                "type": "invalid_request_error",
                                "param": "model",
                                "code": "model_not_available",
                            }
                        },
                    )
                req = json.loads(body)
                jid = f"ftjob-{len(api.jobs) + 1}"
                api.jobs[jid] = {
                    "id": jid,
                    "status": "validating_files",
                    "step": 0,
                    "model": req["model"],
                    "seed": req["seed"],
                    "suffix": req["suffix"],
                    "training_file": req["training_file"],
                    "validation_file": req.get("validation_file"),
                    "n_epochs": req["method"]["supervised"]["hyperparameters"]["n_epochs"],
                    "events": [
                        {
                            "id": f"ev-{jid}-0",
                            "object": "fine_tuning.job.event",
                            "created_at": 0,
                            "level": "info",
                            "message": "Validating training file",
                        }
                    ],
                }
                return self._send(200, api.job_view(api.jobs[jid]))
            if self.path == "/v1/chat/completions":  # the fine-tuned model answering (evaluate / serve)
                req = json.loads(body)
                msg = {"role": "assistant", "content": f"answer from {req['model']}"}
                return self._send(
                    200,
                    {
                        "id": "chat-1",
                        "object": "chat.completion",
                        "created": 1,
                        "model": req["model"],
                        "choices": [{"index": 0, "finish_reason": "stop", "message": msg}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                    },
                )
            m = re.fullmatch(r"/v1/fine_tuning/jobs/([^/]+)/cancel", self.path)
            if m and m.group(1) in api.jobs:
                api.jobs[m.group(1)]["status"] = "cancelled"
                return self._send(200, api.job_view(api.jobs[m.group(1)]))
            self._send(404, {"error": {"message": "not found"}})

        def do_GET(self) -> None:
            api.calls.append(f"GET {self.path.split('?')[0]}")
            if self.path.split("?")[0] == "/v1/models":
                data = [{"id": m, "object": "model", "created": 1, "owned_by": "system"} for m in api.models]
                return self._send(200, {"object": "list", "data": data})
            m = re.fullmatch(r"/v1/fine_tuning/jobs/([^/?]+)(/events)?(\?.*)?", self.path)
            if not m or m.group(1) not in api.jobs:
                return self._send(404, {"error": {"message": "no such job", "code": "not_found"}})
            job = api.jobs[m.group(1)]
            if m.group(2):
                return self._send(200, {"object": "list", "data": job["events"], "has_more": False})
            api.advance(job)
            self._send(200, api.job_view(job))

    return Handler


@pytest.fixture()
def api() -> Iterator[tuple[FakeOpenAI, str]]:
    state = FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    (tmp_path / "train.jsonl").write_text((json.dumps(row) + "\n") * 10)  # OpenAI's minimum
    (tmp_path / "validation.jsonl").write_text(json.dumps(row) + "\n")
    return tmp_path / "train.jsonl", tmp_path / "validation.jsonl"


def _client(base_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    return openai_client(Settings(), max_retries=3)


CFG = FinetuneParams(backend="openai", epochs=2, suffix="support", poll_interval_s=1)


def test_job_runs_to_success_through_a_429_with_events(api, files, tmp_path, monkeypatch) -> None:
    server, url = api
    logs: list[str] = []
    sleeps: list[float] = []
    tuner = OpenAIFineTuner(_client(url, monkeypatch), CFG, tmp_path / "jobs", log=logs.append, sleep=sleeps.append)
    state = tuner.run(*files, seed=7)
    assert state.status == "succeeded" and state.fine_tuned_model == "ft:gpt-4o-mini-2024-07-18:support:ftjob-1"
    assert state.trained_tokens == 1234
    assert server.calls.count("POST /v1/fine_tuning/jobs") == 2  # the 429, then the retry
    assert len(server.jobs) == 1 and server.jobs["ftjob-1"]["seed"] == 7 and server.jobs["ftjob-1"]["n_epochs"] == 2
    assert server.calls[0] == "GET /v1/models"  # the target is checked before anything is uploaded
    assert server.files["file-1"].count(b'"assistant"') == 10 and server.jobs["ftjob-1"]["validation_file"] == "file-2"
    assert any("Validating training file" in line for line in logs) and any("status succeeded" in line for line in logs)
    assert all(s >= 1 for s in sleeps)
    assert [m["step"] for m in state.metrics] == [2, 3]  # "metrics" events are kept for the loss curve
    # the same data again: the stored result is returned, no new upload or job
    before = list(server.calls)
    assert tuner.run(*files, seed=7).fine_tuned_model == state.fine_tuned_model
    assert server.calls == before


def test_restarted_flow_resumes_polling_instead_of_a_new_job(api, files, tmp_path, monkeypatch) -> None:
    server, url = api

    class Crash(Exception):
        pass

    def crash(_: float) -> None:
        raise Crash("worker killed")

    client = _client(url, monkeypatch)
    with pytest.raises(Crash):
        OpenAIFineTuner(client, CFG, tmp_path / "jobs", log=lambda _: None, sleep=crash).run(*files, seed=1)
    assert len(server.jobs) == 1 and server.jobs["ftjob-1"]["status"] != "succeeded"
    logs: list[str] = []
    state = OpenAIFineTuner(client, CFG, tmp_path / "jobs", log=logs.append, sleep=lambda _: None).run(*files, seed=1)
    assert state.status == "succeeded" and state.job_id == "ftjob-1"
    assert len(server.jobs) == 1 and len(server.files) == 2  # nothing uploaded or created twice
    assert "resuming job ftjob-1" in logs[0]
    assert logs.count("[ftjob-1] info: Validating training file") == 0  # events seen before the crash are not repeated


def test_failed_job_raises_with_error_code(api, files, tmp_path, monkeypatch) -> None:
    server, url = api
    server.fail_jobs = True
    tuner = OpenAIFineTuner(_client(url, monkeypatch), CFG, tmp_path / "jobs", log=lambda _: None, sleep=lambda _: None)
    with pytest.raises(FineTuneError, match="failed \\(invalid_training_file: line 3: too many tokens\\)") as err:
        tuner.run(*files, seed=1)
    assert err.value.code == "invalid_training_file" and err.value.job_id == "ftjob-1"
    server.fail_jobs = False  # fixed: the rerun creates a new job rather than resuming the failed one
    assert tuner.run(*files, seed=1).job_id == "ftjob-2"


def test_cancel_on_request_and_timeout_keeps_the_job(api, files, tmp_path, monkeypatch) -> None:
    server, url = api
    cfg = CFG.model_copy(update={"max_wait_s": 2})
    tuner = OpenAIFineTuner(_client(url, monkeypatch), cfg, tmp_path / "jobs", log=lambda _: None, sleep=lambda _: None)
    with pytest.raises(FineTuneError, match="rerun to resume"):
        tuner.run(*files, seed=3)
    assert tuner.cancel("ftjob-1") == "cancelled"
    assert server.jobs["ftjob-1"]["status"] == "cancelled"
    assert json.loads(next((tmp_path / "jobs").glob("*.json")).read_text())["status"] == "cancelled"


def test_a_malformed_job_state_names_its_file(api, files, tmp_path, monkeypatch) -> None:
    from llmops.errors import DataContractError

    _, url = api
    tuner = OpenAIFineTuner(_client(url, monkeypatch), CFG, tmp_path / "jobs", log=lambda _: None, sleep=lambda _: None)
    tuner.run(*files, seed=3)
    [path] = (tmp_path / "jobs").glob("*.json")
    assert JobState.read(path).status == "succeeded"  # what the tuner writes reads back
    path.write_text('{"key": "k"}')
    with pytest.raises(DataContractError, match=rf"{re.escape(str(path))} is not a valid fine-tuning job state \(model: Field"):
        tuner.run(*files, seed=3)


def test_missing_key_is_a_config_error(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        openai_client(Settings(_env_file=None))


def test_stage_entry_validates_then_trains_with_openai(api, files, tmp_path, monkeypatch, settings_env) -> None:
    from llmops.errors import BudgetExceeded
    from llmops.finetune.backend import OpenAIBackend, run_finetune

    server, url = api
    client = _client(url, monkeypatch)
    settings = Settings()
    backend = OpenAIBackend(CFG, client, tmp_path / "jobs", seed=5, loss_plot=tmp_path / "loss.png", log=lambda _: None)
    backend_cfg = CFG.model_copy(update={"poll_interval_s": 0.01})
    backend.cfg = backend_cfg
    broke = CFG.model_copy(update={"budget_usd": 0.0, "price_per_1m_tokens": {"gpt-4o-mini-2024-07-18": 3.0}})
    with pytest.raises(BudgetExceeded):
        run_finetune(*files, tmp_path / "out", broke, settings, seed=5, backend=backend)
    assert server.calls == []  # the cap stopped the run before any upload
    record = run_finetune(*files, tmp_path / "out", backend_cfg, settings, seed=5, backend=backend)
    assert record.backend == "openai" and record.model_id is not None and record.model_id.startswith("ft:gpt-4o-mini")
    assert record.validation is not None
    assert record.validation.examples == 10 and record.validation.estimated_cost_usd > 0
    assert record.train_loss == [1.0, pytest.approx(0.6667)]
    assert TrainingReport.read(tmp_path / "out") == record and record.job_id == "ftjob-1"
    assert "device" not in json.loads((tmp_path / "out/training.json").read_text())  # local-only keys are not written
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_cli_cancel_and_validate(api, files, tmp_path, monkeypatch, settings_env) -> None:
    from typer.testing import CliRunner

    from llmops.cli import app

    server, url = api
    client = _client(url, monkeypatch)
    with pytest.raises(FineTuneError):
        OpenAIFineTuner(
            client,
            CFG.model_copy(update={"max_wait_s": 1}),
            settings_env / "finetune/openai-jobs",
            log=lambda _: None,
            sleep=lambda _: None,
        ).run(*files, seed=2)
    params = tmp_path / "params.yaml"
    params.write_text("finetune:\n  backend: openai\n")
    runner = CliRunner()
    res = runner.invoke(app, ["finetune", "cancel", "ftjob-1", "--params", str(params)])
    assert res.exit_code == 0, res.output
    assert server.jobs["ftjob-1"]["status"] == "cancelled" and "cancelled" in res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    res = runner.invoke(app, ["finetune", "validate", str(bad), "--params", str(params)])
    assert res.exit_code == 1 and "example_missing_assistant_message" in res.output


def test_openai_trained_model_is_evaluated_and_served_as_itself(api, monkeypatch, settings_env) -> None:
    """An OpenAI-trained record must not fall back to the local base model (evaluate stage, answer service)."""
    from llmops.llm.openai_chat import OpenAIChatModel
    from llmops.llm.trained import trained_chat_model

    _, base_url = api
    model_id = "ft:gpt-4o-mini-2024-07-18:support:ftjob-1"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        trained_chat_model("openai", model_id, None, Settings())
    with pytest.raises(ConfigError, match="fine_tuned_model"):
        trained_chat_model("openai", None, None, Settings())
    _client(base_url, monkeypatch)  # sets the key and base URL
    model = trained_chat_model("openai", model_id, None, Settings())
    assert isinstance(model, OpenAIChatModel) and model.model_id == model_id
    assert model.chat([{"role": "user", "content": "refund?"}]).text == f"answer from {model_id}"


def test_service_serves_an_openai_champion_through_the_api(api, tmp_path, monkeypatch, settings_env) -> None:
    from llmops.finetune.registry import ModelRecord, Registry
    from llmops.llm.openai_chat import OpenAIChatModel
    from llmops.serve.app import serving_model

    _, base_url = api
    _client(base_url, monkeypatch)
    model_id = "ft:gpt-4o-mini-2024-07-18:support:ftjob-7"
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.json").write_text('{"job_id": "ftjob-7"}')
    registry = Registry.from_settings(Settings())
    record = ModelRecord(model_id=model_id, base_model="gpt-4o-mini-2024-07-18", backend="openai", data_rev="d1")
    registry.register(record, job)
    registry.promote(model_id, reason="test")
    model = serving_model(Settings())
    assert isinstance(model, OpenAIChatModel) and model.model_id == model_id
    assert model.chat([{"role": "user", "content": "hi"}]).text == f"answer from {model_id}"


@pytest.mark.parametrize(
    ("case", "today", "error", "code"),
    [
        ("too_few_examples", None, TrainingDataError, None),
        ("not_listed", None, FineTuneError, "model_not_listed"),
        ("past_fine_tuning_end", date(2027, 1, 7), FineTuneError, "fine_tuning_ended"),
        ("shut_down", date(2027, 1, 14), FineTuneError, "model_shut_down"),
    ],
)
def test_target_is_checked_before_any_upload(api, files, tmp_path, monkeypatch, case, today, error, code) -> None:
    server, url = api
    if case == "too_few_examples":
        files[0].write_text("\n".join(files[0].read_text().splitlines()[:9]) + "\n")
    if case == "not_listed":
        server.models = ["gpt-4.1-mini-2025-04-14"]
    tuner = OpenAIFineTuner(_client(url, monkeypatch), CFG, tmp_path / "jobs", log=lambda _: None, today=today)
    with pytest.raises(error, match=r"finetune\.backend: local") as err:
        tuner.run(*files, seed=1)
    assert getattr(err.value, "code", None) == code
    assert "POST /v1/files" not in server.calls and not server.jobs


def test_lifecycle_allows_the_model_until_its_fine_tuning_end(api, files, tmp_path, monkeypatch) -> None:
    _, url = api
    tuner = OpenAIFineTuner(
        _client(url, monkeypatch), CFG, tmp_path / "jobs", log=lambda _: None, sleep=lambda _: None, today=date(2027, 1, 6)
    )
    assert tuner.run(*files, seed=1).status == "succeeded"


def test_a_refused_job_is_a_clear_error_naming_the_local_backend(api, files, tmp_path, monkeypatch) -> None:
    server, url = api
    server.refuse_jobs = True
    tuner = OpenAIFineTuner(_client(url, monkeypatch), CFG, tmp_path / "jobs", log=lambda _: None, sleep=lambda _: None)
    with pytest.raises(
        FineTuneError, match=r"refused a fine-tuning job .*HTTP 400, model_not_available.*finetune\.backend: local"
    ) as err:
        tuner.run(*files, seed=1)
    assert err.value.code == "model_not_available" and not server.jobs
