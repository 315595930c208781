"""Issue 14, point 4: the admin header's global search (cfadmin/global_search.py) finds each
kind by what support staff type, shows only the kinds the user may view, answers with the same
few queries however many objects match, and looks them up through indexes."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cfadmin.global_search import LIMIT, clean_query, query_number, search
from ops.models import Incident
from stacks.choices import OperationKind
from stacks.models import Operation
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

SEARCH_URL = "/admin/search/"


@pytest.fixture
def world(make_tenant, make_stack) -> dict:
    tenant = make_tenant(
        "customer-123", name="Acme Robotics GmbH", contact_email="Ops@Acme-Robotics.example"
    )
    stack = make_stack(
        tenant,
        "customer-123-main",
        domains={"webui": "demo.customer123.com"},
        coolify_service_uuid="k8s0gwcc4w0c0ok4o0",
    )
    other = make_stack("customer-456", "customer-456-main", domains={"webui": "shop.other.net"})
    incident = Incident.objects.create(title="Disk full on coolify-1")
    Incident.objects.create(title="Certificate expired for shop.other.net")
    operation = Operation.objects.create(
        stack=stack, kind=OperationKind.DEPLOY, requested_by_repr="support"
    )
    return {
        "tenant": tenant,
        "stack": stack,
        "other": other,
        "incident": incident,
        "operation": operation,
    }


def found(user: User, query: str) -> dict[str, list[str]]:
    """{kind: [labels]} of a search."""
    return {group.kind: [r.label for r in group.results] for group in search(user, query)}


# --- each kind, by what people type ----------------------------------------------------------


def test_stack_by_domain_prefix(superuser, world):
    assert found(superuser, "demo.customer12")["Stacks"] == ["customer-123-main"]


def test_stack_by_domain_shows_its_domain_tenant_and_status(superuser, world):
    (stacks,) = [g for g in search(superuser, "demo.customer123.com") if g.kind == "Stacks"]
    (result,) = stacks.results
    assert result.url == reverse("admin:stacks_stack_change", args=[world["stack"].pk])
    assert "customer-123" in result.detail and "demo.customer123.com" in result.detail


def test_stack_by_name(superuser, world):
    assert found(superuser, "customer-456-m")["Stacks"] == ["customer-456-main"]


def test_stack_by_coolify_uuid_exactly(superuser, world):
    assert found(superuser, "k8s0gwcc4w0c0ok4o0")["Stacks"] == ["customer-123-main"]
    assert "Stacks" not in found(superuser, "k8s0gwcc")  # a uuid is exact, not a prefix


def test_tenant_by_slug_prefix(superuser, world):
    assert found(superuser, "customer-12")["Tenants"] == ["customer-123"]


def test_tenant_by_name_ignoring_case(superuser, world):
    assert found(superuser, "acme rob")["Tenants"] == ["customer-123"]


def test_tenant_by_contact_ignoring_case(superuser, world):
    assert found(superuser, "ops@acme-ro")["Tenants"] == ["customer-123"]


def test_incident_by_title_ignoring_case(superuser, world):
    incident = world["incident"]
    assert found(superuser, "disk FULL")["Incidents"] == [str(incident)]


def test_incident_by_number(superuser, world):
    incident = world["incident"]
    assert str(incident) in found(superuser, f"#{incident.pk}")["Incidents"]
    assert str(incident) in found(superuser, str(incident.pk))["Incidents"]


def test_operation_by_id(superuser, world):
    operation = world["operation"]
    groups = {g.kind: g for g in search(superuser, f"#{operation.pk}")}
    (result,) = groups["Operations"].results
    assert result.url == reverse("admin:stacks_operation_change", args=[operation.pk])
    assert "customer-123-main" in result.detail


def test_user_by_username_and_email(superuser, support, world):
    support.email = "Sam.Support@cloudfreedom.example"
    support.save()
    assert found(superuser, "supp")["Users"] == ["support"]
    assert found(superuser, "sam.supp")["Users"] == ["support"]


def test_nothing_found(superuser, world):
    assert search(superuser, "no-such-thing-anywhere") == []
    assert search(superuser, "   ") == []


def test_results_are_grouped_in_the_settings_order(superuser, world):
    # "customer-123" is a tenant slug and the beginning of its stack's name.
    assert list(found(superuser, "customer-123")) == ["Tenants", "Stacks"]


def test_a_kind_is_cut_at_the_limit_with_a_link_to_its_list(superuser, make_stack):
    for i in range(LIMIT + 3):
        make_stack("customer-900", f"customer-900-s{i:02d}")
    (stacks,) = [g for g in search(superuser, "customer-900-s") if g.kind == "Stacks"]
    assert len(stacks.results) == LIMIT
    assert stacks.more_url == reverse("admin:stacks_stack_changelist") + "?q=customer-900-s"


# --- input that is not a search --------------------------------------------------------------


def test_query_is_cleaned():
    assert clean_query("  demo\x00.example \n com ") == "demo .example com"
    assert len(clean_query("x" * 500)) == 100


def test_numbers():
    assert query_number("#42") == 42
    assert query_number("42") == 42
    assert query_number("4 2") is None
    assert query_number("9" * 40) is None  # beyond any id: no number, no database error


@pytest.mark.parametrize("query", ["#" + "9" * 40, "a\x00b", "%", "_", "'; drop table x", "ü"])
def test_odd_input_answers_a_page(client, superuser, world, query):
    client.force_login(superuser)
    response = client.get(SEARCH_URL, {"q": query})
    assert response.status_code == 200


# --- permissions -------------------------------------------------------------------------------


def test_a_viewer_does_not_see_users(viewer, world):
    kinds = found(viewer, "customer-123")
    assert kinds["Tenants"] == ["customer-123"]  # the viewer role views tenants and stacks
    assert "Users" not in found(viewer, "viewer")


def test_staff_without_permissions_see_nothing(db, world):
    bare = User.objects.create_user("bare", is_staff=True)
    for query in ("customer-123", "disk full", f"#{world['operation'].pk}", "bare"):
        assert search(bare, query) == [], query


def test_each_kind_needs_its_own_view_permission(db, world):
    user = User.objects.create_user("tenants-only", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    assert list(found(user, "customer-123")) == ["Tenants"]
    user = User.objects.get(pk=user.pk)  # a fresh permission cache
    user.user_permissions.add(Permission.objects.get(codename="view_incident"))
    assert list(found(user, "disk")) == ["Incidents"]


def test_search_page_needs_a_staff_login(client, world):
    response = client.get(SEARCH_URL, {"q": "customer-123"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(User.objects.create_user("customer", is_staff=False))
    assert client.get(SEARCH_URL, {"q": "customer-123"}).status_code == 302


# --- the pages -------------------------------------------------------------------------------


def test_results_page_lists_links_grouped_by_kind(client, superuser, world):
    client.force_login(superuser)
    response = client.get(SEARCH_URL, {"q": "customer-123"})
    body = response.content.decode()
    assert response.status_code == 200
    assert '<h2 id="cf-search-kind-1">Tenants' in body
    assert '<h2 id="cf-search-kind-2">Stacks' in body
    assert reverse("admin:tenants_tenant_change", args=[world["tenant"].pk]) in body
    assert reverse("admin:stacks_stack_change", args=[world["stack"].pk]) in body
    assert 'value="customer-123"' in body  # the header's box keeps the search


def test_results_page_says_when_nothing_is_found(client, superuser, world):
    client.force_login(superuser)
    body = client.get(SEARCH_URL, {"q": "zzz-nothing"}).content.decode()
    assert "Nothing found for “zzz-nothing”." in body


def test_every_admin_page_has_the_box_but_not_the_login_page(client, superuser):
    assert 'id="cf-global-search"' not in client.get("/admin/login/").content.decode()
    client.force_login(superuser)
    body = client.get("/admin/").content.decode()
    assert 'id="cf-global-search"' in body
    assert f'action="{SEARCH_URL}"' in body
    assert 'aria-keyshortcuts="/"' in body


# --- bounded cost --------------------------------------------------------------------------------


def _search_queries(user: User, query: str) -> int:
    user = User.objects.get(pk=user.pk)  # permissions read inside the count
    with CaptureQueriesContext(connection) as queries:
        search(user, query)
    return len(queries)


def test_query_count_is_bounded_and_the_same_with_many_matches(admin_role, make_tenant, make_stack):
    def grow(n: int, start: int) -> None:
        for i in range(start, start + n):
            tenant = make_tenant(f"bulk-{i:03d}", contact_email=f"bulk-{i}@example.com")
            make_stack(tenant, f"bulk-{i:03d}-main", domains={"webui": f"bulk-{i:03d}.example"})
            Incident.objects.create(title=f"bulk incident {i}")

    grow(2, 0)
    few = _search_queries(admin_role, "bulk-")
    grow(25, 2)
    many = _search_queries(admin_role, "bulk-")
    # The user's permissions (2), tenants, stacks (by uuid, name, project, domain, the rows
    # the last two found, their domains), incidents, users.
    assert few == many
    assert many <= 11


# --- indexes ---------------------------------------------------------------------------------


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    return _plan_sql(sql, params)


def _plan_sql(sql: str, params: tuple | list = ()) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: prefer any index
            cursor.execute(f"EXPLAIN {sql}", params or None)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params or None)
        return "\n".join(str(row) for row in cursor.fetchall())


@pytest.mark.parametrize(
    ("model", "field", "index"),
    [
        (Tenant, "name", "tenant_name_lower_idx"),
        (Tenant, "contact_email", "tenant_contact_lower_idx"),
        (Incident, "title", "ops_incident_title_lower_idx"),
    ],
)
def test_case_ignoring_prefixes_are_answered_by_an_index(db, model, field, index):
    from cfadmin.global_search import lower_prefix_q

    queryset, condition = lower_prefix_q(model.objects.all(), field, "Acme")
    # Unordered: the model's default order (an incident's opening) may lead SQLite to walk
    # that index instead; what is checked here is that the condition has an index.
    assert index in _plan(queryset.filter(condition).order_by().values("pk"))


def test_tenant_slug_prefix_is_answered_by_an_index(db):
    from cfadmin.index_search import prefix_q

    plan = _plan(Tenant.objects.filter(prefix_q("slug", "customer-1")).values("pk"))
    if connection.vendor == "postgresql":
        # LIKE 'x%' under any collation: the pattern index of migration 0003.
        assert "tenant_slug_prefix_idx" in plan
    else:
        assert "(slug>? AND slug<?)" in plan  # the unique index answers the range


def test_stack_lookups_read_indexes_not_the_tables(db, superuser, make_stack):
    from stacks.search_providers import find_stacks

    make_stack("customer-123", domains={"webui": "demo.customer123.com"})
    with CaptureQueriesContext(connection) as queries:
        find_stacks(superuser, "demo.customer123")
    plans = [_plan_sql(query["sql"]) for query in queries.captured_queries]
    # By uuid or id, by name, by project, by domain, the stack found, its domains.
    assert len(plans) == 6
    assert "domain_prefix_idx" in plans[3]
    for plan in plans:
        assert "Seq Scan" not in plan, plan
        assert not re.search(r"SCAN stacks_\w+'?\)?$", plan, re.MULTILINE), plan
