"""The client's wandb backend with the real wandb package in offline mode: the run is read back from disk.

An offline run is a directory ``$WANDB_DIR/wandb/offline-run-<time>-<id>/`` holding ``run-<id>.wandb``, the
records wandb would sync (a LevelDB-style log of ``wandb.proto`` Record messages, read below), and ``files/``
(the logged tables as JSON).
"""

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from analytics import create_analytics_client
from analytics.client.wandb_backend import WandbBackend
from tests.servers import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def wandb_env(tmp_path, monkeypatch, settings):
    """Offline, silent, everything under tmp_path (no network, nothing in ~/.config/wandb).

    wandb reads its environment once per process, when its first run starts: ``wandb.teardown()`` around each
    test makes the next run read this test's.
    """
    import wandb

    wandb.teardown()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for variable in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(variable, str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    settings.WANDB_PROJECT = "skills-test"
    settings.WANDB_ENTITY = "toolweaver-team"
    settings.WANDB_RUN_NAME = "parse-json-v2"
    settings.WANDB_API_KEY = "wandb-secret-key-0123456789"
    settings.ANALYTICS_DEFAULT_ORG = "default"
    yield tmp_path
    wandb.teardown()


@pytest.fixture
def client(wandb_env):
    client = create_analytics_client("wandb")
    yield client
    client.close()


# --- Reading an offline run -------------------------------------------------------------------------------

BLOCK_SIZE = 32 * 1024  # the log's records are cut into chunks that never cross a 32 KiB block
CHUNK_HEADER = struct.Struct("<IHB")  # checksum, length, type (1 full, 2 first, 3 middle, 4 last)


def read_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending, records = 7, b"", []  # after the file header: magic, version
    while position + CHUNK_HEADER.size <= len(data):
        if BLOCK_SIZE - position % BLOCK_SIZE < CHUNK_HEADER.size:  # a block's tail too short for a header
            position += BLOCK_SIZE - position % BLOCK_SIZE
            continue
        _, length, kind = CHUNK_HEADER.unpack_from(data, position)
        position += CHUNK_HEADER.size
        pending += data[position:position + length]
        position += length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def finished_records(path: Path) -> list:
    """The records once the run's exit record is on disk: wandb's service may still be writing the file after
    ``finish()`` returns (seen on a loaded machine: a datastore read without its run record)."""
    def with_exit_record():
        records = read_records(path)
        return records if any(record.WhichOneof("record_type") == "exit" for record in records) else None

    return wait_for(with_exit_record, timeout=30, what="the wandb run's exit record")


class OfflineRun:
    def __init__(self, wandb_dir: Path):
        (datastore,) = wandb_dir.glob("wandb/offline-run-*/run-*.wandb")
        self.files = datastore.parent / "files"
        self.info = None
        self.config: dict = {}
        self.history: list[dict] = []
        for record in finished_records(datastore):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                self.info = record.run
                self.config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
            elif kind == "config":
                self.config.update({item.key: json.loads(item.value_json) for item in record.config.update})
            elif kind == "history":
                self.history.append({item.key or ".".join(item.nested_key): json.loads(item.value_json)
                                     for item in record.history.item})

    def steps(self, prefix: str) -> list[dict]:
        """The values of each step logging a key that starts with ``prefix``, without wandb's own keys."""
        return [{key: value for key, value in step.items() if key.startswith(prefix)}
                for step in self.history if any(key.startswith(prefix) for key in step)]

    def table(self, key: str) -> dict:
        (step,) = [step for step in self.history if f"{key}.path" in step]
        return json.loads((self.files / step[f"{key}.path"]).read_text())


# --- The tests --------------------------------------------------------------------------------------------


def test_an_offline_run_holds_every_value_logged(client, wandb_env):
    client.record_skill_execution("parse_json", True, 145.5, user_id="user_123", org_id="org_456")
    client.record_skill_usage("parse_json", user_id="user_7", org_id="org_456", success=False, latency_ms=900.0)
    client.record_skill_execution("web_search", True, 20.0)
    client.rate_skill("parse_json", 4, org_id="org_456")
    client.record_skill_install("parse_json", org_id="org_456")
    client.record_skill_install("parse_json", org_id="org_456")
    client.update_health_score("parse_json", 91.5, org_id="org_456")
    client.close()

    run = OfflineRun(wandb_env)
    assert (run.info.project, run.info.entity, run.info.display_name) == (
        "skills-test", "toolweaver-team", "parse-json-v2")
    assert run.steps("skill/parse_json/") == [
        {"skill/parse_json/latency_ms": 145.5, "skill/parse_json/success": 1, "skill/parse_json/success_rate": 1.0},
        {"skill/parse_json/latency_ms": 900.0, "skill/parse_json/success": 0, "skill/parse_json/success_rate": 0.5},
        {"skill/parse_json/rating": 4},
        {"skill/parse_json/installs": 1},
        {"skill/parse_json/installs": 2},
        {"skill/parse_json/health_score": 91.5},
    ]
    assert run.steps("skill/web_search/") == [
        {"skill/web_search/latency_ms": 20.0, "skill/web_search/success": 1, "skill/web_search/success_rate": 1.0}]
    assert run.config["org_ids"] == ["default", "org_456"]
    assert run.config["skill_versions"] == {}


def test_evaluations_of_two_versions_are_steps_config_and_a_table(client, wandb_env):
    client.log_evaluation("parse_json", "1.0", {"accuracy": 0.81, "p95_latency_ms": 310}, org_id="org_456")
    client.log_evaluation("parse_json", "2.0", {"accuracy": 0.93, "cost_usd": 0.002}, org_id="org_456")
    client.close()

    run = OfflineRun(wandb_env)
    assert run.steps("eval/") == [
        {"eval/parse_json/1.0/accuracy": 0.81, "eval/parse_json/1.0/p95_latency_ms": 310},
        {"eval/parse_json/2.0/accuracy": 0.93, "eval/parse_json/2.0/cost_usd": 0.002},
    ]
    assert run.config["skill_versions"] == {"parse_json": ["1.0", "2.0"]}
    assert run.config["org_ids"] == ["org_456"]
    table = run.table("evaluations")
    assert table["columns"] == ["org_id", "skill_id", "skill_version", "accuracy", "cost_usd", "p95_latency_ms"]
    assert table["data"] == [["org_456", "parse_json", "1.0", 0.81, None, 310],
                             ["org_456", "parse_json", "2.0", 0.93, 0.002, None]]


@pytest.mark.parametrize(("arguments", "field"), [
    (("parse json", "1.0", {"accuracy": 1}), "skill_id"),
    (("parse_json", "", {"accuracy": 1}), "version"),
    (("parse_json", "1.0", {}), "metrics"),
    (("parse_json", "1.0", {"accuracy": "high"}), "metrics"),
    (("parse_json", "1.0", {"accuracy": float("nan")}), "metrics"),
    (("parse_json", "1.0", {"top/1": 0.5}), "metrics"),
])
def test_a_bad_evaluation_raises_value_error_naming_the_field(client, arguments, field):
    with pytest.raises(ValueError, match=field):
        client.log_evaluation(*arguments)


def test_health_check_config_summary_and_close(client, wandb_env):
    assert isinstance(client, WandbBackend)
    check = client.health_check()
    assert check["healthy"] is True
    assert "live (offline)" in check["detail"] and str(wandb_env) in check["detail"]
    summary = client.get_config_summary()
    assert summary["wandb_api_key"] == "***"
    assert (summary["wandb_project"], summary["wandb_entity"], summary["wandb_run_name"]) == (
        "skills-test", "toolweaver-team", "parse-json-v2")
    assert client.push() is True

    client.close()
    assert client.health_check()["healthy"] is False
    assert client.push() is False
    with pytest.raises(RuntimeError, match="closed"):
        client.record_skill_execution("parse_json", True, 1.0)
    written = [path for path in wandb_env.rglob("*") if path.is_file()]
    assert written and not any(b"wandb-secret-key" in path.read_bytes() for path in written)


@pytest.mark.django_db
def test_a_fan_out_records_in_the_store_and_the_run(wandb_env):
    from analytics.models import SkillExecution

    client = create_analytics_client("sqlite,wandb")
    client.record_skill_execution("parse_json", True, 145.5, org_id="org_456")
    client.close()
    assert SkillExecution.objects.filter(skill__skill_id="parse_json").count() == 1
    assert OfflineRun(wandb_env).steps("skill/parse_json/latency_ms") == [{"skill/parse_json/latency_ms": 145.5}]


def test_two_clients_write_two_runs(wandb_env, settings):
    first = create_analytics_client("wandb")
    settings.WANDB_RUN_NAME = "second"
    second = create_analytics_client("wandb")
    first.record_skill_execution("parse_json", True, 1.0)
    second.record_skill_execution("parse_json", True, 2.0)
    first.close()
    second.close()
    assert len(list(wandb_env.glob("wandb/offline-run-*"))) == 2


def test_online_without_an_api_key_stops_with_wandbs_reason(wandb_env, settings, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("NETRC", str(wandb_env / "netrc"))  # no stored login either
    settings.WANDB_API_KEY = ""
    with pytest.raises(ValueError, match="could not start a run: No API key"):
        create_analytics_client("wandb")


def test_without_the_wandb_package_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` meets when it is not installed
    with pytest.raises(ImportError, match=r"pip install 'toolweaver-analytics\[wandb\]'"):
        create_analytics_client("wandb")


def test_wandb_is_imported_only_when_its_backend_is_created(tmp_path):
    script = ("import sys\nfrom analytics import create_analytics_client\n"
              "create_analytics_client('sqlite')\nprint('wandb' in sys.modules)\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TOOLWEAVER_DATA_DIR": str(tmp_path),
           "ANALYTICS_DB_PATH": str(tmp_path / "analytics.db")}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
