"""A common search on SQLite reads the trail newest first instead of sorting every match
(cfadmin.audit_search.sqlite_match_count); a rare one keeps the indexes; both find the same
events in the same order. PostgreSQL's planner makes that choice by itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from cfadmin import audit_search
from cfadmin.models import AuditAction, AuditEvent

pytestmark = pytest.mark.django_db

BUSY, RARE = 30, 3


@pytest.fixture
def trail(monkeypatch):
    monkeypatch.setattr(audit_search, "COMMON_MATCHES", 10)
    now = timezone.now()
    actors = ["busy-actor"] * BUSY + ["rare-actor"] * RARE + ["someone"] * 20
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor_repr=actor,
            action=AuditAction.UPDATE,
            target_repr=f"thing {i}",
            message=f"event {i}",
        )
        for i, actor in enumerate(actors)
    )
    # Times not in id order, so an ordering by id alone would show up.
    for i, pk in enumerate(AuditEvent.objects.order_by("id").values_list("pk", flat=True)):
        AuditEvent.objects.filter(pk=pk).update(occurred_at=now - timedelta(minutes=(i * 7) % 53))


def newest_first(queryset) -> list[int]:
    return list(queryset.order_by("-occurred_at", "-id").values_list("pk", flat=True))


def sql_of(queryset) -> str:
    return str(queryset.order_by("-occurred_at", "-id").query)


@pytest.mark.parametrize(("actor", "count"), [("busy-actor", BUSY), ("rare-actor", RARE)])
def test_common_and_rare_searches_find_the_same_events_in_the_same_order(trail, actor, count):
    found = AuditEvent.objects.search(actor)
    indexed = AuditEvent.objects.filter(audit_search.audit_search_q(actor))

    assert newest_first(found) == newest_first(indexed)
    assert len(newest_first(found)) == count
    assert set(found.values_list("actor_repr", flat=True)) == {actor}


def test_on_sqlite_only_a_common_search_is_read_in_the_trails_order(trail):
    busy = sql_of(AuditEvent.objects.search("busy-actor"))
    rare = sql_of(AuditEvent.objects.search("rare-actor"))

    if connection.vendor == "sqlite":
        assert '+"cfadmin_auditevent"."actor_repr"' in busy
        with connection.cursor() as cursor:
            sql, params = (
                AuditEvent.objects.search("busy-actor")
                .order_by("-occurred_at", "-id")[:5]
                .query.sql_with_params()
            )
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(row[-1] for row in cursor.fetchall())
        assert "TEMP B-TREE" not in plan, plan  # no sort of every match
    else:
        assert "+" not in busy.split("WHERE", 1)[1].split("ORDER BY")[0]
    assert "+" not in rare.split("WHERE", 1)[1].split("ORDER BY")[0]


def test_the_trail_searched_for_a_busy_actor_is_counted_through_the_indexes(trail, admin_client):
    """The list's count is the search's own index count, not a read of the whole trail."""
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(
            reverse("admin:cfadmin_auditevent_changelist") + "?q=busy-actor"
        )

    assert response.status_code == 200
    assert response.context["cl"].result_count == BUSY
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts  # the search counted
    assert not [sql for sql in counts if '+"cfadmin_auditevent"' in sql], counts
