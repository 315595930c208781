"""Issue 13, the health results list: the same number of queries (at most 12) with few results
and with many, plain, filtered and searched; no `details` loaded; the check filter's choices
from the daily rollups; the search by a check name's start or a status, through indexes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ops.health_search import check_names, search_results
from ops.models import HealthCheckResult, HealthDailyRollup

pytestmark = pytest.mark.django_db

LIST = reverse("admin:ops_healthcheckresult_changelist")
MAX_QUERIES = 12
CHECKS = ["coolify_api", "coolify_servers", "pocketbase"]
STATUSES = ["ok", "ok", "ok", "warning", "down"]


def add_results(count: int, start: int = 0) -> None:
    now = timezone.now()
    for n in range(start, start + count):
        check, status = CHECKS[n % len(CHECKS)], STATUSES[n % len(STATUSES)]
        at = now - timedelta(minutes=5 * n)
        HealthCheckResult.objects.create(
            check_name=check,
            status=status,
            message=f"{check}: {'OK' if status == 'ok' else 'degraded'}",
            details={"output": "x" * 500},
            checked_at=at,
        )
        HealthDailyRollup.count_result(check, status, at)


def count_queries(client, url: str) -> tuple[int, list[str], str]:
    client.get(url)  # warm the per-process caches
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured), [q["sql"] for q in captured], response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?status__exact=down",
        "?status__exact=ok",
        "?check_name__exact=pocketbase",
        "?checked_at__gte=2000-01-01T00:00:00%2B00:00",
        "?q=coolify",
        "?q=down",
        "?q=degraded",  # no check's name: nothing, cheaply
        "?o=2",
    ],
)
def test_the_list_makes_the_same_queries_for_few_and_many_results(client, superuser, query):
    client.force_login(superuser)
    add_results(8)
    few, _, _ = count_queries(client, LIST + query)
    add_results(250, start=8)
    many, sql, _ = count_queries(client, LIST + query)
    assert many == few <= MAX_QUERIES
    results = [s for s in sql if 'FROM "ops_healthcheckresult"' in s]
    assert all('"ops_healthcheckresult"."details"' not in s for s in results)
    # no date hierarchy (a scan of every day) and no DISTINCT over the results
    assert all("DISTINCT" not in s for s in results)


def test_the_check_filter_offers_the_checks_with_results(client, superuser):
    client.force_login(superuser)
    add_results(6)
    html = client.get(LIST).content.decode()
    for check in CHECKS:
        assert f"?check_name__exact={check}" in html
    html = client.get(LIST, {"check_name__exact": "pocketbase"}).content.decode()
    assert "pocketbase: OK" in html and "coolify_api: OK" not in html


def test_check_names_come_from_the_rollups_of_the_kept_days():
    add_results(3)
    old = timezone.now().date() - timedelta(days=400)
    HealthDailyRollup.objects.create(check_name="retired_check", day=old, total=1, ok=1)
    assert check_names() == sorted(CHECKS)
    assert check_names("coolify") == ["coolify_api", "coolify_servers"]
    assert check_names("nothing") == []


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("coolify", {"coolify_api", "coolify_servers"}),
        ("coolify_api: degraded", {"coolify_api"}),  # a message's start: its check
        ("pocketbase", {"pocketbase"}),
        ("degraded", set()),
        ("", set(CHECKS)),
    ],
)
def test_the_search_finds_checks_by_their_names_start(term, expected):
    add_results(15)
    found = search_results(HealthCheckResult.objects.all(), term)
    assert set(found.values_list("check_name", flat=True)) == expected


def test_the_search_finds_a_status():
    add_results(15)
    found = search_results(HealthCheckResult.objects.all(), " Down ")
    assert set(found.values_list("status", flat=True)) == {"down"}
    assert found.count() == 3


def test_the_list_has_indexes_for_its_order_and_filters():
    order = HealthCheckResult._meta.ordering
    fields = [index.fields for index in HealthCheckResult._meta.indexes]
    assert order in fields
    assert ["status", *order] in fields and ["check_name", *order] in fields
