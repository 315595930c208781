"""Every input rule, refused with an error on the right field that names the rule.

Each rule is checked at the validator/model level (full_clean) and through the admin, where the
error must be shown next to its field and nothing may be written. The admin's stack form is an
existing stack's page (stacks are made by a deploy, whose own tests check the stack name): its
domains and secrets.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from cfadmin.models import AuditAction, AuditEvent
from cfadmin.validators import (
    normalize_domain,
    validate_compose_service_name,
    validate_dns_label,
    validate_env_key,
    validate_env_value,
)
from stacks.choices import StackStatus
from stacks.models import Stack, StackDomain, StackSecret
from tenants.models import Tenant

TENANT_ADD = "/admin/tenants/tenant/add/"
TEMPLATE = "openclaw-agent"

# --------------------------------------------------------------------------------------------
# helpers


def model_errors(obj: Any) -> dict[str, list[str]]:
    """full_clean's errors by field; fails the test when the object is valid."""
    with pytest.raises(ValidationError) as caught:
        obj.full_clean()
    return caught.value.message_dict


def field_errors(response: Any, field_id: str) -> list[str]:
    """The messages of the error list the admin renders next to the input `id_<field_id>`."""
    page = response.content.decode()
    match = re.search(
        rf'<ul class="errorlist"[^>]*id="id_{re.escape(field_id)}_error"[^>]*>(.*?)</ul>',
        page,
        re.S,
    )
    if match is None:
        return []
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


def mentions(messages: list[str], *fragments: str) -> bool:
    """True when the messages contain one of the fragments ("a|b" means a or b)."""
    text = " ".join(messages).lower()
    wanted = [part for fragment in fragments for part in fragment.split("|")]
    return any(part.lower() in text for part in wanted)


def tenant_post(**fields: Any) -> dict[str, Any]:
    data = {
        "slug": "customer-123",
        "name": "Customer 123",
        "contact_email": "",
        "status": "active",
        "notes": "",
        "stacks-TOTAL_FORMS": "0",
        "stacks-INITIAL_FORMS": "0",
        "stacks-MIN_NUM_FORMS": "0",
        "stacks-MAX_NUM_FORMS": "0",
    }
    data.update(fields)
    return data


def stack_post(
    tenant: Tenant,
    *,
    domains: list[tuple[str, str]] = (),
    secrets: list[tuple[str, str]] = (),
    **fields: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tenant": str(tenant.pk),
        "project_name": f"{tenant.slug}-project",
        "stack_name": f"{tenant.slug}-main",
        "template_name": TEMPLATE,
        "domains-TOTAL_FORMS": str(len(domains)),
        "domains-INITIAL_FORMS": "0",
        "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000",
        "secrets-TOTAL_FORMS": str(len(secrets)),
        "secrets-INITIAL_FORMS": "0",
        "secrets-MIN_NUM_FORMS": "0",
        "secrets-MAX_NUM_FORMS": "1000",
        "operations-TOTAL_FORMS": "0",
        "operations-INITIAL_FORMS": "0",
        "operations-MIN_NUM_FORMS": "0",
        "operations-MAX_NUM_FORMS": "0",
    }
    for index, (service, domain) in enumerate(domains):
        data[f"domains-{index}-service"] = service
        data[f"domains-{index}-domain"] = domain
    for index, (key, value) in enumerate(secrets):
        data[f"secrets-{index}-key"] = key
        data[f"secrets-{index}-value"] = value
    data.update(fields)
    return data


def stack_change_url(tenant: Tenant) -> str:
    """The page of the tenant's stack, made bare (no domain, no secret) when it has none."""
    stack = Stack.objects.filter(tenant=tenant).first() or Stack.objects.create(
        tenant=tenant,
        project_name=f"{tenant.slug}-project",
        stack_name=f"{tenant.slug}-main",
        template_name=TEMPLATE,
    )
    return f"/admin/stacks/stack/{stack.pk}/change/"


BARE = (1, 0, 0, 0)  # the bare stack of `tenant`, and nothing else


def row_counts() -> tuple[int, int, int, int]:
    return (
        Stack.objects.count(),
        StackDomain.objects.count(),
        StackSecret.objects.count(),
        AuditEvent.objects.exclude(action=AuditAction.LOGIN).count(),  # logging in is an event
    )


@pytest.fixture
def admin_client_(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def tenant(make_tenant) -> Tenant:
    tenant = make_tenant("customer-123")
    stack_change_url(tenant)  # its bare stack, whose page the admin tests post to
    return tenant


# --------------------------------------------------------------------------------------------
# DNS labels: tenant slug and stack name

# (value, validator code, fragment every message for this value must mention)
BAD_LABELS = [
    pytest.param("Customer-123", "dns_label_chars", "lowercase", id="uppercase"),
    pytest.param("customer_123", "dns_label_chars", "lowercase", id="underscore"),
    pytest.param("customer.123", "dns_label_chars", "lowercase", id="dot"),
    pytest.param("customer 123", "dns_label_chars", "lowercase", id="space"),
    pytest.param("a" * 64, "dns_label_length", "63", id="64-chars"),
    pytest.param("-customer", "dns_label_hyphen", "hyphen", id="leading-hyphen"),
    pytest.param("customer-", "dns_label_hyphen", "hyphen", id="trailing-hyphen"),
]


@pytest.mark.parametrize(("value", "code", "fragment"), BAD_LABELS)
def test_it_refuses_a_bad_dns_label_in_the_validator(value, code, fragment):
    with pytest.raises(ValidationError) as caught:
        validate_dns_label(value)
    assert caught.value.code == code
    assert mentions(caught.value.messages, fragment)
    assert mentions(caught.value.messages, "DNS label")


@pytest.mark.parametrize(
    ("validator", "value"),
    [
        pytest.param(validate_dns_label, "customer-123\n", id="dns-label"),
        pytest.param(validate_env_key, "API_KEY\n", id="env-key"),
        pytest.param(validate_compose_service_name, "webui\n", id="compose-service"),
    ],
)
def test_it_refuses_a_trailing_newline(validator, value):
    # `$` in a regex also matches just before a final newline; the rules must not.
    with pytest.raises(ValidationError):
        validator(value)


def test_tenant_full_clean_refuses_a_slug_with_a_trailing_newline(db):
    errors = model_errors(Tenant(slug="customer-123\n", name="Customer"))
    assert set(errors) == {"slug"}
    assert mentions(errors["slug"], "DNS label")


def test_it_refuses_an_empty_dns_label_in_the_validator():
    with pytest.raises(ValidationError) as caught:
        validate_dns_label("")
    assert caught.value.code == "required"


@pytest.mark.parametrize("value", ["a" * 63, "customer-123", "0", "a-b-c", "9abc"])
def test_it_accepts_dns_labels_up_to_63_characters(value):
    validate_dns_label(value)  # no error


@pytest.mark.parametrize(("value", "code", "fragment"), BAD_LABELS)
def test_tenant_full_clean_refuses_a_bad_slug_on_the_slug_field(db, value, code, fragment):
    errors = model_errors(Tenant(slug=value, name="Customer"))
    assert set(errors) == {"slug"}
    assert mentions(errors["slug"], fragment)
    assert mentions(errors["slug"], "DNS label")


def test_tenant_full_clean_refuses_an_empty_slug(db):
    errors = model_errors(Tenant(slug="", name="Customer"))
    assert set(errors) == {"slug"}
    assert mentions(errors["slug"], "blank", "empty", "required")


def test_tenant_full_clean_accepts_a_63_character_slug(db):
    tenant = Tenant(slug="a" * 63, name="Customer")
    tenant.full_clean()
    tenant.save()
    assert Tenant.objects.get(slug="a" * 63).name == "Customer"


@pytest.mark.parametrize(("value", "code", "fragment"), BAD_LABELS)
def test_stack_full_clean_refuses_a_bad_stack_name_on_its_field(tenant, value, code, fragment):
    stack = Stack(tenant=tenant, project_name="p", stack_name=value, template_name=TEMPLATE)
    errors = model_errors(stack)
    assert set(errors) == {"stack_name"}
    assert mentions(errors["stack_name"], fragment)
    assert mentions(errors["stack_name"], "DNS label")


def test_stack_full_clean_refuses_an_empty_stack_name(tenant):
    stack = Stack(tenant=tenant, project_name="p", stack_name="", template_name=TEMPLATE)
    errors = model_errors(stack)
    assert set(errors) == {"stack_name"}
    assert mentions(errors["stack_name"], "blank", "empty", "required")


def test_stack_full_clean_accepts_a_63_character_stack_name(tenant):
    stack = Stack(tenant=tenant, project_name="p", stack_name="s" * 63, template_name=TEMPLATE)
    stack.full_clean()
    stack.save()
    assert Stack.objects.get(pk=stack.pk).stack_name == "s" * 63


# The admin's form field enforces max_length itself (and says "at most 63 characters"); the
# other messages come from the DNS-label validator.
ADMIN_BAD_LABELS = [
    *BAD_LABELS,
    pytest.param("", "required", "required", id="empty"),
]


@pytest.mark.parametrize(("value", "code", "fragment"), ADMIN_BAD_LABELS)
def test_admin_tenant_add_shows_the_slug_error_next_to_slug_and_saves_nothing(
    admin_client_, value, code, fragment
):
    response = admin_client_.post(TENANT_ADD, tenant_post(slug=value))
    assert response.status_code == 200
    errors = field_errors(response, "slug")
    assert errors, "no error shown next to the slug field"
    assert mentions(errors, fragment)
    assert field_errors(response, "name") == []
    assert not Tenant.objects.exists()
    assert row_counts()[3] == 0


def test_admin_tenant_add_accepts_a_63_character_slug(admin_client_):
    response = admin_client_.post(TENANT_ADD, tenant_post(slug="a" * 63))
    assert response.status_code == 302
    assert Tenant.objects.get().slug == "a" * 63


def test_admin_tenant_add_refuses_a_slug_already_taken(admin_client_, make_tenant):
    make_tenant("customer-123", name="First")
    response = admin_client_.post(TENANT_ADD, tenant_post(slug="customer-123", name="Second"))
    assert response.status_code == 200
    assert mentions(field_errors(response, "slug"), "already exists")
    assert list(Tenant.objects.values_list("name", flat=True)) == ["First"]


# --------------------------------------------------------------------------------------------
# stack name unique across the platform among live stacks (containers are cf-agent-<stack>)


def stack_name_error_codes(obj: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        obj.full_clean()
    return [error.code for error in caught.value.error_dict.get("stack_name", [])]


def test_stack_name_taken_by_a_live_stack_of_the_same_tenant_is_refused(make_stack):
    first = make_stack("customer-123", "main")
    second = Stack(tenant=first.tenant, project_name="p", stack_name="main", template_name=TEMPLATE)
    errors = model_errors(second)
    assert set(errors) == {"stack_name"}
    assert mentions(errors["stack_name"], "a live stack named main already exists")
    assert mentions(errors["stack_name"], "tenant customer-123")
    assert stack_name_error_codes(second) == ["stack_name_taken"]


def test_stack_full_clean_of_an_existing_stack_does_not_clash_with_itself(make_stack):
    stack = make_stack("customer-123", "main")
    stack.full_clean()  # no error


def test_the_name_of_a_tombstoned_stack_can_be_reused(make_stack):
    old = make_stack("customer-123", "main")
    old.transition_to(StackStatus.DELETING)
    old.transition_to(StackStatus.DELETED)
    new = Stack(tenant=old.tenant, project_name="p", stack_name="main", template_name=TEMPLATE)
    new.full_clean()
    new.save()
    assert Stack.objects.filter(tenant=old.tenant, stack_name="main").count() == 2


@pytest.mark.parametrize("status", sorted(set(StackStatus.values) - {StackStatus.DELETED}))
def test_another_tenant_may_not_use_the_name_of_a_live_stack(make_stack, make_tenant, status):
    make_stack("customer-123", "main", status=status)
    other = make_tenant("customer-456")
    stack = Stack(tenant=other, project_name="p", stack_name="main", template_name=TEMPLATE)
    errors = model_errors(stack)
    assert set(errors) == {"stack_name"}
    assert mentions(errors["stack_name"], "a live stack named main already exists")
    assert mentions(errors["stack_name"], "tenant customer-123")  # the owner, not the requester
    assert not mentions(errors["stack_name"], "customer-456")
    assert stack_name_error_codes(stack) == ["stack_name_taken"]
    assert Stack.objects.filter(stack_name="main").count() == 1


def test_another_tenant_may_reuse_the_name_of_a_tombstoned_stack(make_stack, make_tenant):
    old = make_stack("customer-123", "main")
    old.transition_to(StackStatus.DELETING)
    old.transition_to(StackStatus.DELETED)
    other = make_tenant("customer-456")
    stack = Stack(tenant=other, project_name="p", stack_name="main", template_name=TEMPLATE)
    stack.full_clean()
    stack.save()
    rows = Stack.objects.filter(stack_name="main").order_by("tenant__slug")
    assert list(rows.values_list("tenant__slug", "status")) == [
        ("customer-123", "deleted"),
        ("customer-456", "pending"),
    ]


# --------------------------------------------------------------------------------------------
# domains

BAD_DOMAINS = [
    pytest.param("https://x.com", "domain_scheme", "scheme", id="scheme"),
    pytest.param("x.com:443", "domain_port", "port", id="port"),
    pytest.param("x.com/a", "domain_path", "path", id="path"),
    pytest.param("*.x.com", "domain_wildcard", "wildcard", id="wildcard"),
    pytest.param("192.168.1.10", "domain_ip", "IP address", id="ip-address"),
    pytest.param("localhost", "domain_single_label", "fully qualified", id="single-label"),
    pytest.param("a_b.example.com", "domain_invalid", "not a valid host name", id="underscore"),
    pytest.param("-ab.example.com", "domain_invalid", "hyphen", id="label-hyphen"),
    pytest.param("x..com", "domain_invalid", "not a valid host name", id="empty-label"),
    pytest.param("a" * 64 + ".example.com", "domain_invalid", "too long", id="label-too-long"),
    pytest.param(
        ".".join(["a" * 60] * 5), "domain_invalid", "too long|at most 253", id="name-too-long"
    ),
    pytest.param("demo example.com", "domain_chars", "space", id="space"),
]


@pytest.mark.parametrize(("value", "code", "fragment"), BAD_DOMAINS)
def test_it_refuses_a_bad_domain_in_the_validator(value, code, fragment):
    with pytest.raises(ValidationError) as caught:
        normalize_domain(value)
    assert caught.value.code == code
    assert mentions(caught.value.messages, fragment)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bücher.example.com", "xn--bcher-kva.example.com"),
        ("Demo.Customer123.COM", "demo.customer123.com"),
        ("demo.customer123.com.", "demo.customer123.com"),
        (" demo.customer123.com ", "demo.customer123.com"),
    ],
)
def test_it_normalises_a_domain_to_lowercase_idna(value, expected):
    assert normalize_domain(value) == expected


@pytest.mark.parametrize(("value", "code", "fragment"), BAD_DOMAINS)
def test_domain_full_clean_puts_the_error_on_the_domain_field(make_stack, value, code, fragment):
    stack = make_stack()
    errors = model_errors(StackDomain(stack=stack, service="webui", domain=value))
    assert set(errors) == {"domain"}
    assert mentions(errors["domain"], fragment)


def test_domain_full_clean_stores_the_unicode_domain_as_xn(make_stack):
    stack = make_stack()
    domain = StackDomain(stack=stack, service="webui", domain="bücher.example.com")
    domain.full_clean()
    domain.save()
    assert StackDomain.objects.get().domain == "xn--bcher-kva.example.com"


@pytest.mark.parametrize(("value", "code", "fragment"), BAD_DOMAINS)
def test_admin_shows_a_bad_domain_next_to_its_field_and_saves_nothing(
    admin_client_, tenant, value, code, fragment
):
    data = stack_post(
        tenant,
        domains=[("webui", value)],
        secrets=[("ANTHROPIC_API_KEY", "sk-test-0123456789abcdef")],
    )
    response = admin_client_.post(stack_change_url(tenant), data)
    assert response.status_code == 200
    errors = field_errors(response, "domains-0-domain")
    assert errors, "no error shown next to the domain field"
    assert mentions(errors, fragment)
    assert field_errors(response, "domains-0-service") == []
    assert row_counts() == BARE


def test_admin_saves_a_unicode_domain_in_its_xn_form(admin_client_, tenant):
    data = stack_post(tenant, domains=[("webui", "bücher.example.com")])
    response = admin_client_.post(stack_change_url(tenant), data)
    assert response.status_code == 302
    assert list(StackDomain.objects.values_list("domain", flat=True)) == [
        "xn--bcher-kva.example.com"
    ]


def test_admin_refuses_the_same_domain_twice_in_one_stack(admin_client_, tenant):
    data = stack_post(
        tenant, domains=[("webui", "demo.customer123.com"), ("webui", "DEMO.customer123.com")]
    )
    response = admin_client_.post(stack_change_url(tenant), data)
    assert response.status_code == 200
    assert mentions(field_errors(response, "domains-1-domain"), "twice")
    assert row_counts() == BARE


# domain ownership across tenants


@pytest.mark.parametrize(
    "claimed", ["demo.customer123.com", "DEMO.Customer123.com", "demo.customer123.com."]
)
def test_a_domain_of_a_live_stack_cannot_be_taken_by_another_tenant(make_stack, claimed):
    make_stack("customer-123", "main", domains={"webui": "demo.customer123.com"})
    other = make_stack("customer-456", "other")
    errors = model_errors(StackDomain(stack=other, service="webui", domain=claimed))
    assert set(errors) == {"domain"}
    assert mentions(errors["domain"], "already used by stack customer-123/main")


def test_a_domain_is_free_once_its_stack_is_tombstoned(make_stack):
    first = make_stack("customer-123", "main", domains={"webui": "demo.customer123.com"})
    other = make_stack("customer-456", "other")
    first.transition_to(StackStatus.DELETING)
    first.transition_to(StackStatus.DELETED)
    domain = StackDomain(stack=other, service="webui", domain="demo.customer123.com")
    domain.full_clean()
    domain.save()
    live = StackDomain.objects.filter(domain="demo.customer123.com", released_at__isnull=True)
    assert [d.stack_id for d in live] == [other.pk]


def test_a_domain_of_a_stack_only_being_deleted_is_still_owned(make_stack):
    first = make_stack("customer-123", "main", domains={"webui": "demo.customer123.com"})
    other = make_stack("customer-456", "other")
    first.transition_to(StackStatus.DELETING)
    errors = model_errors(StackDomain(stack=other, service="webui", domain="demo.customer123.com"))
    assert mentions(errors["domain"], "already used")


def test_admin_refuses_a_domain_owned_by_another_tenants_stack_and_saves_nothing(
    admin_client_, make_stack, make_tenant
):
    make_stack("customer-123", "customer-123-main", domains={"webui": "demo.customer123.com"})
    other = make_tenant("customer-456")
    url = stack_change_url(other)
    before = row_counts()
    data = stack_post(
        other,
        domains=[("webui", "demo.customer123.com")],
        secrets=[("ANTHROPIC_API_KEY", "sk-test-0123456789abcdef")],
    )
    response = admin_client_.post(url, data)
    assert response.status_code == 200
    assert mentions(field_errors(response, "domains-0-domain"), "already used by stack")
    assert row_counts() == before
    assert not StackDomain.objects.filter(stack__tenant=other).exists()


def test_admin_gives_a_released_domain_to_another_stack(admin_client_, make_stack, make_tenant):
    first = make_stack("customer-123", "customer-123-main", domains={"webui": "demo.c.com"})
    first.transition_to(StackStatus.DELETING)
    first.transition_to(StackStatus.DELETED)
    other = make_tenant("customer-456")
    url = stack_change_url(other)
    response = admin_client_.post(url, stack_post(other, domains=[("webui", "demo.c.com")]))
    assert response.status_code == 302
    owner = StackDomain.objects.get(domain="demo.c.com", released_at__isnull=True)
    assert owner.stack.tenant == other


# compose service names

BAD_SERVICES = [
    pytest.param("WebUI", id="uppercase"),
    pytest.param("web ui", id="space"),
    pytest.param("-webui", id="leading-hyphen"),
    pytest.param("web.ui", id="dot"),
    pytest.param("s" * 64, id="64-chars"),
]


@pytest.mark.parametrize("value", BAD_SERVICES)
def test_it_refuses_a_bad_compose_service_name(make_stack, value):
    with pytest.raises(ValidationError) as caught:
        validate_compose_service_name(value)
    assert caught.value.code == "compose_service"
    errors = model_errors(StackDomain(stack=make_stack(), service=value, domain="demo.x.com"))
    assert set(errors) == {"service"}
    assert mentions(errors["service"], "compose service name", "at most 63")


@pytest.mark.parametrize("value", ["webui", "open-webui", "web_ui", "0api"])
def test_it_accepts_compose_service_names(value):
    validate_compose_service_name(value)


@pytest.mark.parametrize("value", ["WebUI", "web ui", "-webui"])
def test_admin_shows_a_bad_service_name_next_to_its_field(admin_client_, tenant, value):
    response = admin_client_.post(
        stack_change_url(tenant), stack_post(tenant, domains=[(value, "demo.x.com")])
    )
    assert response.status_code == 200
    assert mentions(field_errors(response, "domains-0-service"), "compose service name")
    assert row_counts() == BARE


# --------------------------------------------------------------------------------------------
# env keys and values

BAD_KEYS = [
    pytest.param("anthropic_api_key", id="lowercase"),
    pytest.param("1KEY", id="leading-digit"),
    pytest.param("MY-KEY", id="dash"),
    pytest.param("MY KEY", id="space"),
]


@pytest.mark.parametrize("value", BAD_KEYS)
def test_it_refuses_a_bad_env_key(make_stack, value):
    with pytest.raises(ValidationError) as caught:
        validate_env_key(value)
    assert caught.value.code == "env_key"
    secret = StackSecret(stack=make_stack(), key=value)
    secret.set_value("v")
    errors = model_errors(secret)
    assert set(errors) == {"key"}
    assert mentions(errors["key"], "A-Z, 0-9 and _")


@pytest.mark.parametrize(
    "value", ["ANTHROPIC_API_KEY", "_X", "A1", "TELEGRAM_BOT_TOKEN", "A" * 128]
)
def test_the_env_key_rule_accepts_well_formed_keys(value):
    validate_env_key(value)


@pytest.mark.parametrize("value", ["ANTHROPIC_API_KEY", "TELEGRAM_BOT_TOKEN"])
def test_a_secret_with_a_well_formed_key_passes_full_clean(make_stack, value):
    secret = StackSecret(stack=make_stack(), key=value)
    secret.set_value("v")
    secret.full_clean()
    secret.save()
    assert StackSecret.objects.get().key == value


@pytest.mark.parametrize("value", BAD_KEYS)
def test_admin_shows_a_bad_env_key_next_to_its_field_and_saves_nothing(
    admin_client_, tenant, value
):
    data = stack_post(tenant, domains=[("webui", "demo.x.com")], secrets=[(value, "secret-v")])
    response = admin_client_.post(stack_change_url(tenant), data)
    assert response.status_code == 200
    assert mentions(field_errors(response, "secrets-0-key"), "A-Z, 0-9 and _")
    assert row_counts() == BARE


def test_admin_refuses_the_same_env_key_twice_in_one_stack(admin_client_, tenant):
    data = stack_post(
        tenant, secrets=[("ANTHROPIC_API_KEY", "value-one"), ("ANTHROPIC_API_KEY", "value-two")]
    )
    response = admin_client_.post(stack_change_url(tenant), data)
    assert response.status_code == 200
    assert "duplicate" in response.content.decode().lower()
    assert row_counts() == BARE


ENV_LIMIT = 32 * 1024


@pytest.mark.parametrize(
    ("value", "code"),
    [
        pytest.param("abc\x00def", "env_value_nul", id="nul"),
        pytest.param("x" * (ENV_LIMIT + 1), "env_value_size", id="32769-ascii"),
        pytest.param("é" * (ENV_LIMIT // 2 + 1), "env_value_size", id="32770-bytes-2-byte"),
        pytest.param("€" * 10923, "env_value_size", id="32769-bytes-3-byte"),
    ],
)
def test_it_refuses_a_bad_env_value_and_stores_nothing(make_stack, value, code):
    with pytest.raises(ValidationError) as caught:
        validate_env_value(value)
    assert caught.value.code == code
    assert mentions(caught.value.messages, "NUL" if code == "env_value_nul" else "32 KiB")
    secret = StackSecret(stack=make_stack(), key="ANTHROPIC_API_KEY")
    with pytest.raises(ValidationError):
        secret.set_value(value)
    assert secret.value_encrypted == ""
    assert secret.masked_value == ""


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("x" * ENV_LIMIT, id="32768-ascii"),
        pytest.param("é" * (ENV_LIMIT // 2), id="32768-bytes-2-byte"),
        pytest.param("€" * 10922 + "xx", id="32768-bytes-3-byte"),
    ],
)
def test_it_accepts_an_env_value_of_exactly_32_kib(make_stack, value):
    assert len(value.encode()) == ENV_LIMIT
    validate_env_value(value)
    secret = StackSecret(stack=make_stack(), key="ANTHROPIC_API_KEY")
    secret.set_value(value)
    secret.full_clean()
    secret.save()
    assert StackSecret.objects.get().reveal() == value


def test_the_size_limit_counts_bytes_not_characters():
    value = "€" * 10923  # 10923 characters, 32769 bytes
    assert len(value) < ENV_LIMIT
    with pytest.raises(ValidationError) as caught:
        validate_env_value(value)
    assert "32769" in caught.value.messages[0]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param("abc\x00def", "nul", id="nul"),
        pytest.param("x" * (ENV_LIMIT + 1), "32 KiB", id="32769-ascii"),
        pytest.param("€" * 10923, "32 KiB", id="32769-bytes-3-byte"),
    ],
)
def test_admin_shows_a_bad_env_value_next_to_its_field_and_saves_nothing(
    admin_client_, tenant, value, fragment
):
    data = stack_post(
        tenant, domains=[("webui", "demo.x.com")], secrets=[("ANTHROPIC_API_KEY", value)]
    )
    response = admin_client_.post(stack_change_url(tenant), data)
    assert response.status_code == 200
    errors = field_errors(response, "secrets-0-value")
    assert errors, "no error shown next to the value field"
    assert mentions(errors, fragment)
    assert field_errors(response, "secrets-0-key") == []
    assert row_counts() == BARE


def test_admin_accepts_an_env_value_of_exactly_32_kib(admin_client_, tenant):
    value = "é" * (ENV_LIMIT // 2)
    response = admin_client_.post(
        stack_change_url(tenant), stack_post(tenant, secrets=[("ANTHROPIC_API_KEY", value)])
    )
    assert response.status_code == 302
    assert StackSecret.objects.get(key="ANTHROPIC_API_KEY").reveal() == value


def test_admin_requires_a_value_for_a_new_secret(admin_client_, tenant):
    response = admin_client_.post(
        stack_change_url(tenant), stack_post(tenant, secrets=[("ANTHROPIC_API_KEY", "")])
    )
    assert response.status_code == 200
    assert mentions(field_errors(response, "secrets-0-value"), "enter a value")
    assert row_counts() == BARE


# --------------------------------------------------------------------------------------------
# control: a fully valid submission is saved, with all its inline rows


def test_admin_saves_a_stacks_domains_and_secrets(admin_client_, tenant):
    data = stack_post(
        tenant,
        domains=[("webui", "demo.customer123.com")],
        secrets=[("ANTHROPIC_API_KEY", "sk-test-0123456789abcdef")],
    )
    response = admin_client_.post(stack_change_url(tenant), data)
    assert response.status_code == 302
    stack = Stack.objects.get()
    assert (stack.tenant, stack.stack_name, stack.status) == (
        tenant,
        "customer-123-main",
        "pending",
    )
    assert [(d.service, d.domain) for d in stack.domains.all()] == [
        ("webui", "demo.customer123.com")
    ]
    assert stack.secrets.get().reveal() == "sk-test-0123456789abcdef"
