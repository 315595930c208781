"""The four staff roles, what each may do in the admin, and the audit trail of admin changes."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth.models import Group

from cfadmin import audit
from cfadmin.models import AuditAction, AuditEvent
from cfadmin.roles import ADMIN, OPERATOR, SUPPORT, VIEWER, role_permissions
from stacks.models import Operation, Stack, StackDomain, StackSecret
from tenants.models import Tenant

TENANTS = "/admin/tenants/tenant/"
STACKS = "/admin/stacks/stack/"
AUDIT = "/admin/cfadmin/auditevent/"
OPERATIONS = "/admin/stacks/operation/"


def tenant_post(**fields) -> dict:
    data = {
        "slug": "customer-999",
        "name": "Customer 999",
        "contact_email": "ops@customer999.example",
        "status": "active",
        "notes": "",
        "stacks-TOTAL_FORMS": "0",
        "stacks-INITIAL_FORMS": "0",
        "stacks-MIN_NUM_FORMS": "0",
        "stacks-MAX_NUM_FORMS": "0",
    }
    data.update(fields)
    return data


def stack_post(tenant: Tenant, **fields) -> dict:
    data = {
        "tenant": str(tenant.pk),
        "project_name": f"{tenant.slug}-project",
        "stack_name": f"{tenant.slug}-new",
        "template_name": "openclaw-agent",
        "domains-TOTAL_FORMS": "1",
        "domains-INITIAL_FORMS": "0",
        "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000",
        "domains-0-service": "webui",
        "domains-0-domain": "new.customer123.com",
        "secrets-TOTAL_FORMS": "1",
        "secrets-INITIAL_FORMS": "0",
        "secrets-MIN_NUM_FORMS": "0",
        "secrets-MAX_NUM_FORMS": "1000",
        "secrets-0-key": "ANTHROPIC_API_KEY",
        "secrets-0-value": "sk-test-0123456789abcdef",
        "operations-TOTAL_FORMS": "0",
        "operations-INITIAL_FORMS": "0",
        "operations-MIN_NUM_FORMS": "0",
        "operations-MAX_NUM_FORMS": "0",
    }
    data.update(fields)
    return data


def snapshot_db() -> dict:
    return {
        "tenants": list(Tenant.objects.order_by("pk").values()),
        "stacks": list(Stack.objects.order_by("pk").values()),
        "domains": list(StackDomain.objects.order_by("pk").values()),
        "secrets": list(StackSecret.objects.order_by("pk").values()),
        "audit": AuditEvent.objects.count(),
    }


def action_names(response) -> set[str]:
    """The changelist's bulk actions (none at all: no action form is rendered)."""
    assert response.status_code == 200
    assert "cl" in response.context  # it is the changelist
    form = response.context["action_form"]
    names = set() if form is None else {v for v, _ in form.fields["action"].choices if v}
    if "delete_selected" not in names:
        assert 'value="delete_selected"' not in response.content.decode()
    return names


@pytest.fixture
def existing(make_stack):
    """A tenant with one pending stack that has a domain and a secret."""
    return make_stack(
        "customer-123",
        "customer-123-main",
        domains={"webui": "demo.customer123.com"},
        secrets={"ANTHROPIC_API_KEY": "sk-test-0123456789abcdef"},
    )


# --------------------------------------------------------------------------------------------
# the groups of the data migration


def test_the_migration_created_the_four_groups(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {VIEWER, SUPPORT, OPERATOR, ADMIN}


@pytest.mark.parametrize("role", [VIEWER, SUPPORT, OPERATOR, ADMIN])
def test_each_group_has_exactly_its_role_permissions(db, role):
    group = Group.objects.get(name=role)
    held = {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }
    assert held == set(role_permissions()[role])


def test_each_role_includes_the_one_before_it_and_only_admin_deletes(db):
    order = [VIEWER, SUPPORT, OPERATOR, ADMIN]
    perms = {
        role: set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))
        for role in order
    }
    for lower, higher in itertools.pairwise(order):
        assert perms[lower] < perms[higher]
    assert all(p.startswith("view_") for p in perms[VIEWER])
    assert "dry_run_stack" in perms[SUPPORT] and "deploy_stack" not in perms[SUPPORT]
    assert {"deploy_stack", "restart_stack", "stop_stack", "redeploy_stack"} <= perms[OPERATOR]
    assert "rotate_stack_secrets" in perms[OPERATOR]
    for role in (VIEWER, SUPPORT, OPERATOR):
        assert "delete_stack" not in perms[role]
        assert "delete_tenant" not in perms[role]
    assert {"delete_stack", "delete_tenant"} <= perms[ADMIN]


def test_persona_users_hold_their_role_permissions(viewer, operator):
    assert viewer.has_perm("stacks.view_stack")
    assert not viewer.has_perm("stacks.change_stack")
    assert operator.has_perm("stacks.deploy_stack")
    assert not operator.has_perm("stacks.delete_stack")


# --------------------------------------------------------------------------------------------
# viewer: reads everything, writes nothing


@pytest.mark.parametrize("url", [TENANTS, STACKS, AUDIT, OPERATIONS])
def test_a_viewer_opens_the_lists(client, viewer, existing, url):
    client.force_login(viewer)
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count >= (0 if url in (AUDIT, OPERATIONS) else 1)


def test_a_viewer_sees_tenant_and_stack_in_the_lists(client, viewer, existing):
    client.force_login(viewer)
    assert "customer-123" in client.get(TENANTS).content.decode()
    assert "customer-123-main" in client.get(STACKS).content.decode()


def test_a_viewer_opens_change_pages_read_only_without_a_save_button(client, viewer, existing):
    client.force_login(viewer)
    for url in (f"{TENANTS}{existing.tenant_id}/change/", f"{STACKS}{existing.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        assert "customer-123" in page
        assert response.context["has_change_permission"] is False
        assert 'name="_save"' not in page
        assert 'value="Save"' not in page
        assert 'name="_continue"' not in page
        assert 'name="slug"' not in page and 'name="stack_name"' not in page


@pytest.mark.parametrize("url", [f"{TENANTS}add/", f"{STACKS}add/"])
def test_a_viewer_cannot_open_add_pages(client, viewer, url):
    client.force_login(viewer)
    assert client.get(url).status_code == 403


def test_a_viewer_cannot_add_a_tenant(client, viewer, existing):
    client.force_login(viewer)
    before = snapshot_db()
    response = client.post(f"{TENANTS}add/", tenant_post())
    assert response.status_code == 403
    assert snapshot_db() == before
    assert not Tenant.objects.filter(slug="customer-999").exists()


def test_a_viewer_cannot_add_a_stack(client, viewer, existing):
    client.force_login(viewer)
    before = snapshot_db()
    response = client.post(f"{STACKS}add/", stack_post(existing.tenant))
    assert response.status_code == 403
    assert snapshot_db() == before


def test_a_viewer_cannot_change_a_tenant(client, viewer, existing):
    client.force_login(viewer)
    before = snapshot_db()
    url = f"{TENANTS}{existing.tenant_id}/change/"
    response = client.post(url, tenant_post(slug="customer-123", name="Renamed"))
    assert response.status_code == 403
    assert snapshot_db() == before
    assert Tenant.objects.get(pk=existing.tenant_id).name != "Renamed"


def test_a_viewer_cannot_change_a_stack(client, viewer, existing):
    client.force_login(viewer)
    before = snapshot_db()
    data = stack_post(
        existing.tenant,
        stack_name="renamed",
        **{"domains-TOTAL_FORMS": "0", "secrets-TOTAL_FORMS": "0"},
    )
    response = client.post(f"{STACKS}{existing.pk}/change/", data)
    assert response.status_code == 403
    assert snapshot_db() == before


# --------------------------------------------------------------------------------------------
# support and operator


def test_support_cannot_add_a_stack(client, support, existing):
    client.force_login(support)
    assert client.get(f"{STACKS}add/").status_code == 403
    before = snapshot_db()
    response = client.post(f"{STACKS}add/", stack_post(existing.tenant))
    assert response.status_code == 403
    assert snapshot_db() == before


def test_support_cannot_add_a_tenant(client, support):
    client.force_login(support)
    response = client.post(f"{TENANTS}add/", tenant_post())
    assert response.status_code == 403
    assert not Tenant.objects.exists()


def test_an_operator_adds_a_tenant(client, operator):
    client.force_login(operator)
    assert client.get(f"{TENANTS}add/").status_code == 200
    response = client.post(f"{TENANTS}add/", tenant_post())
    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="customer-999")
    assert (tenant.name, tenant.contact_email) == ("Customer 999", "ops@customer999.example")


def test_an_operator_adds_a_domain_and_a_secret_to_a_stack(client, operator, make_stack):
    stack = make_stack("customer-123", "customer-123-new")
    client.force_login(operator)
    url = f"{STACKS}{stack.pk}/change/"
    assert client.get(url).status_code == 200
    response = client.post(url, stack_post(stack.tenant))
    assert response.status_code == 302
    assert [d.domain for d in stack.domains.all()] == ["new.customer123.com"]
    assert stack.secrets.get().reveal() == "sk-test-0123456789abcdef"


def test_nobody_adds_a_bare_stack_through_the_admin(client, privileged, make_tenant):
    """Stacks are made by a deploy ("Deploy a new stack"): a bare record would never deploy."""
    tenant = make_tenant("customer-123")
    client.force_login(privileged)
    assert client.get(f"{STACKS}add/").status_code == 403
    assert client.post(f"{STACKS}add/", stack_post(tenant)).status_code == 403
    assert not Stack.objects.exists()


def test_an_operator_cannot_delete_a_tenant(client, operator, make_tenant):
    tenant = make_tenant("customer-123")
    client.force_login(operator)
    response = client.post(f"{TENANTS}{tenant.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Tenant.objects.filter(pk=tenant.pk).exists()


# --------------------------------------------------------------------------------------------
# nobody deletes a stack row through the admin


@pytest.fixture(params=["operator", "admin_role", "superuser"])
def privileged(request):
    return request.getfixturevalue(request.param)


def test_nobody_deletes_a_stack_row_through_the_admin(client, privileged, existing):
    client.force_login(privileged)
    url = f"{STACKS}{existing.pk}/delete/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Stack.objects.filter(pk=existing.pk).exists()
    assert existing.domains.count() == 1 and existing.secrets.count() == 1


def test_delete_selected_is_not_offered_for_stacks(client, privileged, existing):
    client.force_login(privileged)
    response = client.get(STACKS)
    assert response.status_code == 200
    assert "delete_selected" not in action_names(response)


def test_delete_selected_is_offered_where_deleting_is_allowed(client, admin_role, existing):
    # control for the check above: tenants may be bulk-deleted by the admin role
    client.force_login(admin_role)
    assert "delete_selected" in action_names(client.get(TENANTS))


def test_delete_selected_cannot_be_posted_for_stacks(client, superuser, existing):
    client.force_login(superuser)
    response = client.post(
        STACKS, {"action": "delete_selected", "_selected_action": [existing.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302, 403)
    assert Stack.objects.filter(pk=existing.pk).exists()


def test_the_stack_change_page_has_no_delete_link(client, superuser, existing):
    client.force_login(superuser)
    page = client.get(f"{STACKS}{existing.pk}/change/").content.decode()
    assert f"{STACKS}{existing.pk}/delete/" not in page


def test_a_member_of_admin_may_delete_a_tenant_without_stacks(client, admin_role, make_tenant):
    # control for the 403s above: the delete view works where it is meant to
    tenant = make_tenant("customer-777")
    client.force_login(admin_role)
    response = client.post(f"{TENANTS}{tenant.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    event = AuditEvent.objects.get(action=AuditAction.DELETE, tenant_slug="customer-777")
    assert event.actor == admin_role


# --------------------------------------------------------------------------------------------
# audit events and operations are read-only, even for a superuser


@pytest.fixture
def audit_event(existing):
    return audit.record(actor="cli", action=AuditAction.UPDATE, target=existing, message="m")


@pytest.fixture
def operation(existing):
    return Operation.objects.create(stack=existing, kind="deploy", requested_by_repr="operator")


def test_audit_events_are_read_only_for_a_superuser(client, superuser, audit_event):
    client.force_login(superuser)
    assert client.get(f"{AUDIT}add/").status_code == 403
    assert client.post(f"{AUDIT}add/", {"actor_repr": "x", "action": "create"}).status_code == 403
    change = f"{AUDIT}{audit_event.pk}/change/"
    page = client.get(change)
    assert page.status_code == 200  # view only
    assert 'name="_save"' not in page.content.decode()
    assert client.post(change, {"actor_repr": "forged", "message": "forged"}).status_code == 403
    assert client.get(f"{AUDIT}{audit_event.pk}/delete/").status_code == 403
    assert client.post(f"{AUDIT}{audit_event.pk}/delete/", {"post": "yes"}).status_code == 403
    audit_event.refresh_from_db()
    assert (audit_event.actor_repr, audit_event.message) == ("cli", "m")
    assert "delete_selected" not in action_names(client.get(AUDIT))
    # Nothing but the event itself and the superuser's login.
    assert list(AuditEvent.objects.exclude(action=AuditAction.LOGIN)) == [audit_event]


def test_operations_are_read_only_for_a_superuser(client, superuser, operation):
    client.force_login(superuser)
    assert client.get(f"{OPERATIONS}add/").status_code == 403
    assert client.post(f"{OPERATIONS}add/", {"kind": "deploy"}).status_code == 403
    change = f"{OPERATIONS}{operation.pk}/change/"
    assert client.get(change).status_code == 200
    assert client.post(change, {"status": "succeeded", "error": "forged"}).status_code == 403
    assert client.get(f"{OPERATIONS}{operation.pk}/delete/").status_code == 403
    assert client.post(f"{OPERATIONS}{operation.pk}/delete/", {"post": "yes"}).status_code == 403
    operation.refresh_from_db()
    assert (operation.status, operation.error) == ("queued", "")
    assert "delete_selected" not in action_names(client.get(OPERATIONS))


# --------------------------------------------------------------------------------------------
# every admin change is recorded


def test_an_operators_add_and_change_of_a_tenant_are_in_the_audit_trail(client, operator):
    client.force_login(operator)
    assert client.post(f"{TENANTS}add/", tenant_post(name="Old Name")).status_code == 302
    tenant = Tenant.objects.get(slug="customer-999")
    response = client.post(
        f"{TENANTS}{tenant.pk}/change/", tenant_post(name="New Name", slug="customer-999")
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.name == "New Name"

    created = AuditEvent.objects.get(action=AuditAction.CREATE, target_id=str(tenant.pk))
    assert created.actor == operator
    assert created.actor_repr == "operator"
    assert created.tenant_slug == "customer-999"
    assert created.target_repr == "customer-999"
    assert created.changes["after"]["name"] == "Old Name"

    updated = AuditEvent.objects.get(action=AuditAction.UPDATE, target_id=str(tenant.pk))
    assert updated.actor == operator
    assert updated.changes["fields"]["name"] == ["Old Name", "New Name"]
    assert "slug" not in updated.changes["fields"]
    assert "contact_email" not in updated.changes["fields"]
    assert updated.occurred_at >= created.occurred_at

    client.force_login(operator)  # holds view_auditevent
    listing = client.get(AUDIT)
    assert listing.status_code == 200
    listed = {(e.action, e.actor_repr, e.target_repr) for e in listing.context["cl"].result_list}
    assert ("create", "operator", "customer-999") in listed
    assert ("update", "operator", "customer-999") in listed
    page = listing.content.decode()
    assert "customer-999" in page and "operator" in page

    detail = client.get(f"{AUDIT}{updated.pk}/change/").content.decode()
    assert "New Name" in detail and "Old Name" in detail


def test_an_admin_stack_change_is_recorded_with_its_scope(client, operator, make_stack):
    stack = make_stack("customer-123", "customer-123-new")
    client.force_login(operator)
    assert client.post(f"{STACKS}{stack.pk}/change/", stack_post(stack.tenant)).status_code == 302
    events = AuditEvent.objects.exclude(action=AuditAction.LOGIN)
    assert events.exists()
    for event in events:
        assert (event.actor, event.tenant_slug, event.stack_name) == (
            operator,
            "customer-123",
            "customer-123-new",
        )
        assert "sk-test-0123456789abcdef" not in str(event.changes) + event.message


def test_a_refused_change_leaves_no_audit_event(client, viewer, existing):
    client.force_login(viewer)
    before = AuditEvent.objects.count()
    client.post(f"{TENANTS}{existing.tenant_id}/change/", tenant_post(name="X"))
    assert AuditEvent.objects.count() == before
