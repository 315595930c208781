"""One reading of Coolify's status strings (stacks/clients/coolify_status.py), every value that
Coolify 4.3.11's `Service::getStatusAttribute` + `ContainerStatusAggregator` can produce.
Reconcile's mapping to cfadmin statuses is pinned in test_reconcile_logic.py."""

import pytest

from stacks.clients.coolify_status import ServiceState, interpret


@pytest.mark.parametrize(
    ("raw", "state", "running", "up"),
    [
        ("running:healthy", ServiceState.HEALTHY, True, True),
        ("running:unknown", ServiceState.HEALTHY, True, True),  # no healthcheck to report
        ("running:unhealthy", ServiceState.UNHEALTHY, True, False),
        ("starting:unhealthy", ServiceState.STARTING, False, False),  # a job's activity runs
        ("starting:unknown", ServiceState.STARTING, False, False),  # running + created mix
        ("degraded:unhealthy", ServiceState.DEGRADED, False, False),
        ("paused:unknown", ServiceState.DEGRADED, False, False),
        ("restarting:unknown", ServiceState.DEGRADED, False, False),
        ("exited", ServiceState.STOPPED, False, False),
        ("exited:unhealthy", ServiceState.STOPPED, False, False),  # before beta.445
        ("running:healthy:excluded", ServiceState.HEALTHY, True, True),
        ("unknown:unknown:excluded", ServiceState.UNKNOWN, False, False),
        (":", ServiceState.UNKNOWN, False, False),  # no containers, before beta.445
        ("", ServiceState.UNKNOWN, False, False),
        (None, ServiceState.UNKNOWN, False, False),
        ("Running:Healthy", ServiceState.HEALTHY, True, True),
        ("on-fire", ServiceState.UNKNOWN, False, False),
    ],
)
def test_every_coolify_status_has_one_meaning(raw, state, running, up):
    status = interpret(raw)
    assert status.state == state
    assert status.running is running
    assert status.up is up
    assert status.in_motion is (state == ServiceState.STARTING)


def test_excluded_is_kept_apart_from_the_state():
    assert interpret("running:unknown:excluded").excluded
    assert not interpret("running:unknown").excluded


def test_labels_read_as_words():
    assert interpret("degraded:unhealthy").state.label == "degraded"
    assert interpret("running:unhealthy").state.label == "running but unhealthy"
