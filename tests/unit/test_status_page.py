"""The public status page (ops.status_page): open to anyone (no login, no redirect), read-only,
cached; components' states from their health checks' latest results (under maintenance while a
window is on); 90-day uptime bars; public incidents only, by their public title, with their
public updates; the same in JSON, RSS and Atom. Internal text never reaches any of them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ops import incidents
from ops.models import (
    CheckStatus,
    HealthCheckResult,
    HealthDailyRollup,
    Incident,
    IncidentStatus,
    MaintenanceWindow,
    PublicStatus,
    Severity,
)
from ops.models.health import utc_day
from ops.status_page import content
from ops.status_page.components import ComponentState
from ops.status_page.updates import post_update

PAGE = reverse("status_page")
JSON = reverse("status_page_json")
RSS = reverse("status_page_rss")
ATOM = reverse("status_page_atom")
ATOM_NS = "{http://www.w3.org/2005/Atom}"

# Internal text: none of it may appear on the page, in the JSON or in the feeds.
CANARY_TITLE = "CANARY-internal-title-4f1e"
CANARY_SUMMARY = "CANARY-summary-9c2d"
CANARY_NOTE = "CANARY-internal-note-77ab"
CANARY_RESOLUTION = "CANARY-resolution-31f0"
CANARY_TENANT = "canary-tenant-5e8a"
CANARY_STACK = "canary-stack-0b6c"
CANARY_RESULT = "CANARY-health-message-a1"
CANARIES = (
    CANARY_TITLE,
    CANARY_SUMMARY,
    CANARY_NOTE,
    CANARY_RESOLUTION,
    CANARY_TENANT,
    CANARY_STACK,
    CANARY_RESULT,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def open_incident(actor, *, title: str = CANARY_TITLE, **fields) -> Incident:
    incident = Incident(title=title, summary=CANARY_SUMMARY, severity=Severity.SEV1, **fields)
    incidents.prepare_new(incident, actor=actor)
    incident.save()
    incidents.add_note(incident, CANARY_NOTE, actor=actor)
    return incident


def public_incident(actor, public_title: str, *messages: str) -> Incident:
    incident = open_incident(actor)
    for i, message in enumerate(messages or ("We are looking into it.",)):
        post_update(
            incident,
            [PublicStatus.INVESTIGATING, PublicStatus.IDENTIFIED][min(i, 1)],
            message,
            public_title,
            actor=actor,
        )
    return incident


def result(check: str, status: str, *, ago: timedelta = timedelta(minutes=1)) -> None:
    HealthCheckResult.objects.create(
        check_name=check, status=status, message=CANARY_RESULT, checked_at=timezone.now() - ago
    )


def window(*, starts_in: timedelta, lasts: timedelta = timedelta(hours=2), **fields):
    now = timezone.now()
    fields.setdefault("title", "Coolify update")
    fields.setdefault("announced_at", now - timedelta(days=3))
    return MaintenanceWindow.objects.create(
        starts_at=now + starts_in, ends_at=now + starts_in + lasts, **fields
    )


def every_text(client) -> dict[str, str]:
    return {url: client.get(url).content.decode() for url in (PAGE, JSON, RSS, ATOM)}


@pytest.mark.django_db
def test_anyone_logged_out_gets_the_page_and_its_feeds_without_a_redirect(client):
    for url, kind in (
        (PAGE, "text/html"),
        (JSON, "application/json"),
        (RSS, "rss"),
        (ATOM, "atom"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert kind in response["Content-Type"], url
        assert "/admin/login" not in response.get("Location", "")
    assert client.head(PAGE).status_code == 200
    html = client.get(PAGE).content.decode()
    assert "CloudFreedom status" in html and "ops/status_page.css" in html
    assert "<script" not in html and "style=" not in html  # the CSP forbids inline ones


@pytest.mark.django_db
def test_it_refuses_anything_but_get_and_head(client):
    for url in (PAGE, JSON, RSS, ATOM):
        assert client.post(url).status_code == 405, url
        assert client.put(url).status_code == 405, url


@pytest.mark.django_db
def test_components_take_their_state_from_the_latest_result(client):
    result("coolify_api", CheckStatus.DOWN, ago=timedelta(minutes=5))
    result("coolify_api", CheckStatus.OK)  # newest wins
    result("pocketbase", CheckStatus.WARNING)
    result("active_stacks", CheckStatus.OK, ago=timedelta(minutes=4))
    result("active_stacks", CheckStatus.DOWN)

    page = content.build()

    states = {component.name: component.state for component in page.components}
    assert states == {
        "Coolify API": ComponentState.OPERATIONAL,
        "PocketBase": ComponentState.DEGRADED,
        "Agent stacks": ComponentState.OUTAGE,
    }
    assert page.overall == ("outage", "Partial outage")
    data = client.get(JSON).json()
    assert [(c["name"], c["state"]) for c in data["components"]] == [
        ("Coolify API", "operational"),
        ("PocketBase", "degraded"),
        ("Agent stacks", "outage"),
    ]
    html = client.get(PAGE).content.decode()
    assert 'id="component-stacks" data-state="outage"' in html
    assert "Degraded performance" in html


@pytest.mark.django_db
def test_no_result_or_a_stale_one_is_unknown_and_all_ok_is_operational(settings):
    result("coolify_api", CheckStatus.OK)
    result("pocketbase", CheckStatus.OK, ago=timedelta(minutes=3 * 5 + 1))  # stale
    states = [component.state for component in content.build().components]
    assert states == [ComponentState.OPERATIONAL, ComponentState.UNKNOWN, ComponentState.UNKNOWN]

    result("pocketbase", CheckStatus.OK)
    result("active_stacks", CheckStatus.OK)
    assert content.build().overall == ("operational", "All systems operational")


@pytest.mark.django_db
def test_components_are_under_maintenance_while_an_announced_window_is_on(client):
    for check in ("coolify_api", "pocketbase", "active_stacks"):
        result(check, CheckStatus.DOWN)
    on = window(starts_in=-timedelta(minutes=30), public_message="Coolify gets its update.")
    window(starts_in=-timedelta(minutes=30), title="Quiet one", announced_at=None)
    window(starts_in=-timedelta(minutes=30), title="Called off", cancelled_at=timezone.now())

    page = content.build()

    assert {component.state for component in page.components} == {ComponentState.MAINTENANCE}
    assert page.overall == ("maintenance", "Scheduled maintenance in progress")
    assert [w.id for w in page.maintenance_on] == [on.pk]
    html = client.get(PAGE).content.decode()
    assert "Maintenance in progress" in html and "Coolify gets its update." in html
    assert "Quiet one" not in html and "Called off" not in html

    MaintenanceWindow.objects.filter(pk=on.pk).update(cancelled_at=timezone.now())
    assert ComponentState.MAINTENANCE not in {c.state for c in content.build().components}


@pytest.mark.django_db
def test_ninety_daily_bars_with_each_days_uptime_and_the_overall(client):
    today = utc_day(timezone.now())
    rows = {  # days ago: (total, warning, down)
        0: (100, 0, 0),
        1: (200, 0, 10),  # 95%
        2: (100, 30, 0),  # degraded, 100% up
        89: (100, 0, 50),  # the oldest bar: 50%
        90: (100, 0, 100),  # too old: not shown, not counted
    }
    for ago, (total, warning, down) in rows.items():
        HealthDailyRollup.objects.create(
            check_name="coolify_api",
            day=today - timedelta(days=ago),
            total=total,
            ok=total - warning - down,
            warning=warning,
            down=down,
        )

    coolify = content.build().components[0]

    bars = coolify.uptime.bars
    assert len(bars) == 90 and bars[0].day == today - timedelta(days=89) and bars[-1].day == today
    assert [bars[-1].uptime, bars[-2].uptime, bars[-3].uptime, bars[0].uptime] == [1, 0.95, 1, 0.5]
    assert [bars[-1].state, bars[-2].state, bars[-3].state, bars[0].state] == [
        "up",
        "partial",
        "degraded",
        "outage",
    ]
    assert bars[-4].uptime is None and bars[-4].state == "nodata"
    assert coolify.uptime.uptime == pytest.approx((500 - 60) / 500)
    assert coolify.uptime.uptime_text == "88%"
    html = client.get(PAGE).content.decode()
    assert html.count('class="sp-bar sp-bar-') == 90 * 3
    assert f'title="{today - timedelta(days=1):%Y-%m-%d}: 95% uptime"' in html
    days = client.get(JSON).json()["components"][0]["days"]
    assert len(days) == 90 and days[-2] == {
        "day": (today - timedelta(days=1)).isoformat(),
        "uptime": 0.95,
        "state": "partial",
    }


@pytest.mark.django_db
def test_only_public_incidents_show_by_their_public_title_with_updates_newest_first(
    client, support
):
    shown = public_incident(support, "Agent stacks unreachable", "Looking into it.", "Found it.")
    open_incident(support, title="Not public at all")
    resolved = public_incident(support, "Slow deploys yesterday", "Deploys are slow.")
    incidents.change_status(
        resolved, IncidentStatus.RESOLVED, actor=support, resolution=CANARY_RESOLUTION
    )
    old = public_incident(support, "Old trouble", "Long ago.")
    incidents.change_status(old, IncidentStatus.RESOLVED, actor=support, resolution="x")
    Incident.objects.filter(pk=old.pk).update(resolved_at=timezone.now() - timedelta(days=8))

    page = content.build()

    assert [(i.id, i.title) for i in page.incidents] == [(shown.pk, "Agent stacks unreachable")]
    assert [u.message for u in page.incidents[0].updates] == ["Found it.", "Looking into it."]
    assert page.incidents[0].status == PublicStatus.IDENTIFIED
    assert [(i.id, i.status) for i in page.resolved] == [(resolved.pk, PublicStatus.RESOLVED)]
    html = client.get(PAGE).content.decode()
    assert "Agent stacks unreachable" in html and "Slow deploys yesterday" in html
    assert html.index("Found it.") < html.index("Looking into it.")
    assert "Not public at all" not in html and "Old trouble" not in html
    data = client.get(JSON).json()
    assert [i["title"] for i in data["incidents"]] == ["Agent stacks unreachable"]
    assert [i["title"] for i in data["resolved_incidents"]] == ["Slow deploys yesterday"]


@pytest.mark.django_db
def test_internal_text_never_reaches_the_page_the_json_or_the_feeds(client, support, make_stack):
    stack = make_stack(CANARY_TENANT, CANARY_STACK)
    incident = public_incident(support, "Agent stacks unreachable", "We are on it.")
    incident.stacks.add(stack)
    incident.tenants.add(stack.tenant)
    resolved = public_incident(support, "Earlier trouble", "Fixed now.")
    incidents.change_status(
        resolved, IncidentStatus.RESOLVED, actor=support, resolution=CANARY_RESOLUTION
    )
    for check in ("coolify_api", "pocketbase", "active_stacks"):
        result(check, CheckStatus.DOWN)
    window(starts_in=timedelta(days=3), public_message="Planned update.")

    texts = every_text(client)

    for url, text in texts.items():
        assert "Agent stacks unreachable" in text and "We are on it." in text, url
        for canary in CANARIES:
            assert canary not in text, (url, canary)
        assert support.username not in text, url  # nor who posted it


@pytest.mark.django_db
def test_the_feeds_parse_and_list_updates_and_maintenance_newest_first(client, support):
    incident = public_incident(support, "Agent stacks unreachable", "First.", "Second.")
    announced = window(starts_in=timedelta(days=3), public_message="Planned update.")
    cancelled = window(starts_in=timedelta(days=4), title="Disk swap", cancelled_at=timezone.now())

    rss = ET.fromstring(client.get(RSS).content)
    items = rss.findall("./channel/item")
    titles = [item.findtext("title") for item in items]
    assert "Agent stacks unreachable: Identified" in titles
    assert "Agent stacks unreachable: Investigating" in titles
    assert "Scheduled maintenance: Coolify update" in titles
    assert "Maintenance cancelled: Disk swap" in titles
    second = items[titles.index("Agent stacks unreachable: Identified")]
    assert second.findtext("description") == "Second."
    assert second.findtext("link").endswith(f"/status/#incident-{incident.pk}")
    assert second.findtext("link").startswith("http")
    assert len({item.findtext("guid") for item in items}) == len(items)
    maintenance = items[titles.index("Scheduled maintenance: Coolify update")]
    assert maintenance.findtext("link").endswith(f"#maintenance-{announced.pk}")
    assert "Planned update." in maintenance.findtext("description")
    assert cancelled.pk

    atom = ET.fromstring(client.get(ATOM).content)
    entries = atom.findall(f"{ATOM_NS}entry")
    assert sorted(e.findtext(f"{ATOM_NS}title") for e in entries) == sorted(titles)
    updated = [e.findtext(f"{ATOM_NS}updated") for e in entries]
    assert updated == sorted(updated, reverse=True)


@pytest.mark.django_db
def test_a_second_request_within_the_ttl_is_served_from_the_cache(
    client, support, settings, django_assert_num_queries, django_capture_on_commit_callbacks
):
    settings.STATUS_PAGE_CACHE_SECONDS = 30
    incident = public_incident(support, "Agent stacks unreachable", "First.")
    for url in (PAGE, JSON, RSS, ATOM):
        first = client.get(url)
        with django_assert_num_queries(0):
            again = client.get(url)
        assert again.content == first.content, url
        assert "max-age=30" in again["Cache-Control"] and "public" in again["Cache-Control"]

    # A new public update forgets the cached page once it commits.
    with django_capture_on_commit_callbacks(execute=True):
        post_update(incident, PublicStatus.MONITORING, "A fix is out.", actor=support)
    assert "A fix is out." in client.get(PAGE).content.decode()


@pytest.mark.django_db
def test_no_caching_when_the_ttl_is_zero(client, support, settings):
    settings.STATUS_PAGE_CACHE_SECONDS = 0
    client.get(PAGE)
    public_incident(support, "Agent stacks unreachable", "First.")
    response = client.get(PAGE)
    assert "Agent stacks unreachable" in response.content.decode()
    assert "max-age=0" in response["Cache-Control"]


def queries_for(client, url) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.django_db
def test_the_query_count_does_not_grow_with_incidents_and_updates(client, support):
    public_incident(support, "Incident 0", "Update 0.")
    window(starts_in=timedelta(days=3))
    one = {url: queries_for(client, url) for url in (PAGE, JSON, RSS, ATOM)}
    for i in range(1, 20):
        public_incident(support, f"Incident {i}", *(f"Update {n}." for n in range(3)))
        window(starts_in=timedelta(days=3 + i))
    many = {url: queries_for(client, url) for url in (PAGE, JSON, RSS, ATOM)}

    assert many == one
    assert one[PAGE] == 5 and one[JSON] == 5  # results, bars, maintenance, incidents, updates
    assert one[RSS] == 2 and one[ATOM] == 2  # updates, maintenance
    html = client.get(PAGE).content.decode()
    assert all(f"Incident {i}</h3>" in html for i in range(20))
