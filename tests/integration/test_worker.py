"""A real django-q2 worker (qcluster) runs a deploy queued the way the admin queues it."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.services import request_operation
from tests.conftest import PB_EMAIL, PB_PASSWORD, SIM_TOKEN
from tests.integration.workers import database_url

pytestmark = pytest.mark.integration
BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(coolify_sim, pocketbase_server, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "COOLIFY_URL": coolify_sim.url,
        "COOLIFY_TOKEN": SIM_TOKEN,
        "POCKETBASE_URL": pocketbase_server.url,
        "POCKETBASE_EMAIL": PB_EMAIL,
        "POCKETBASE_PASSWORD": PB_PASSWORD,
        "PROVISION_POLL_INTERVAL": "0.1",
        "Q_SYNC": "false",
        "Q_WORKERS": "1",
    }
    log = (tmp_path / "qcluster.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(15)
    with contextlib.suppress(ProcessLookupError):  # whatever is left of its process group
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


def wait_for(operation, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operation.refresh_from_db()
        if operation.status in (OperationStatus.SUCCEEDED, OperationStatus.FAILED):
            return operation
        time.sleep(0.2)
    raise AssertionError(f"operation still {operation.status} after {timeout}s")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_deploys_the_runbook_stack(
    make_stack, worker, coolify_sim, pocketbase, operator
):
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        domains={"webui": "demo.customer123.com"},
        secrets={"ANTHROPIC_API_KEY": "sk-test-worker-0123456789abcdef"},
    )

    operation = wait_for(request_operation(stack, OperationKind.DEPLOY, actor=operator))

    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    assert [s["name"] for s in coolify_sim.api.snapshot()["services"]] == ["customer-123-main"]
    assert pocketbase.find_record("customer-123", "customer-123-main")["status"] == "running"
