"""The admin through Django's test client: counts, filters, search, read-only and write-only fields.

No browser here (tests/e2e has those). Pages are checked as raw bytes wherever a secret could leak.
"""

from __future__ import annotations

import json
import re
import warnings
from html.parser import HTMLParser

import pytest
from django.contrib.admin.models import LogEntry
from django.core.paginator import UnorderedObjectListWarning
from django.db import connection
from django.http import HttpRequest
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cfadmin.models import AuditEvent
from stacks.choices import StackStatus
from stacks.models import Stack, StackDomain, StackSecret
from tenants.models import Tenant
from tests.conftest import PASSWORD

ANTHROPIC_KEY = "sk-test-" + "A1b2C3d4E5f6G7h8I9j0" * 3 + "zQ7x"
TELEGRAM_TOKEN = "tg-42-short"  # under 16 characters: masked entirely
STACK_CHANGELIST = reverse("admin:stacks_stack_changelist")
TENANT_CHANGELIST = reverse("admin:tenants_tenant_changelist")


# --- helpers -------------------------------------------------------------------------------------


class _FormParser(HTMLParser):
    """The values a browser would submit for the admin's main form (<form id="…_form">)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_form = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_value: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id", "").endswith("_form"):
            self.in_form = True
        if not self.in_form or "__prefix__" in a.get("name", ""):
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("submit", "button", "image", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select, self._select_value = name, None
        elif tag == "option" and self._select is not None:
            # A browser submits the selected option, else the first one.
            if "selected" in a or self._select_value is None:
                self._select_value = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.in_form:
            self.in_form = False
        elif tag == "select" and self._select is not None:
            self.fields.append((self._select, self._select_value or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, "".join(self._text).lstrip("\n")))
            self._textarea = None


def form_data(html: bytes | str) -> dict[str, str]:
    parser = _FormParser()
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    return dict(parser.fields)


class _RowParser(HTMLParser):
    """The changelist's rows as {column: text}, columns named by their `field-…` class."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self._in_body = False
        self._cell: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append({})
        elif tag in ("td", "th") and self._in_body:
            names = [c[6:] for c in a.get("class", "").split() if c.startswith("field-")]
            self._cell, self._text = (names[0] if names else None), []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1][self._cell] = "".join(self._text).strip()
            self._cell = None


def changelist_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.status_code
    html = response.content.decode()
    if 'id="result_list"' not in html:
        assert response.context["cl"].result_count == 0
        return []
    start = html.index('id="result_list"')
    parser = _RowParser()
    parser.feed(html[start : html.index("</table>", start)])
    return parser.rows


def stack_names(response) -> list[str]:
    return [row["stack_name"] for row in changelist_rows(response)]


def count_queries(client, url: str) -> int:
    client.get(url)  # warm the per-process caches (content types, permissions)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def login(client, user) -> None:
    # django-axes needs the request (HttpRequest(): the test client has none to give).
    assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)


def _all_admin_text() -> str:
    """Everything the audit trail and Django's history hold, as one string."""
    parts = []
    for event in AuditEvent.objects.all():
        parts += [event.message, event.target_repr, json.dumps(event.changes, ensure_ascii=False)]
    for entry in LogEntry.objects.all():
        parts += [entry.change_message, entry.get_change_message(), entry.object_repr]
    return "\n".join(parts)


# --- tenant changelist ---------------------------------------------------------------------------


def test_tenant_changelist_counts_stacks_by_status(client, superuser, make_tenant, make_stack):
    make_stack("alpha", "a-run-1", status=StackStatus.RUNNING)
    make_stack("alpha", "a-run-2", status=StackStatus.RUNNING)
    make_stack("alpha", "a-err", status=StackStatus.ERROR)
    make_stack("alpha", "a-stop", status=StackStatus.STOPPED)
    make_stack("alpha", "a-pend", status=StackStatus.PENDING)
    make_stack("alpha", "a-gone", status=StackStatus.DELETED)
    make_stack("alpha", "a-gone-2", status=StackStatus.DELETED)
    make_stack("bravo", "b-run", status=StackStatus.RUNNING, domains={"webui": "b.example.com"})
    make_stack("bravo", "b-deploying", status=StackStatus.DEPLOYING)
    make_stack("charlie", "c-gone", status=StackStatus.DELETED)
    make_tenant("delta")
    login(client, superuser)

    rows = {row["slug"]: row for row in changelist_rows(client.get(TENANT_CHANGELIST))}

    def counts(slug: str) -> tuple[str, str, str]:
        row = rows[slug]
        return row["running_count"], row["attention_count"], row["live_count"]

    assert counts("alpha") == ("2", "2", "5")
    assert counts("bravo") == ("1", "0", "2")
    assert counts("charlie") == ("0", "0", "0")
    assert counts("delta") == ("0", "0", "0")


def test_tenant_changelist_attention_link_lists_the_error_and_stopped_stacks(
    client, superuser, make_stack
):
    make_stack("alpha", "a-run", status=StackStatus.RUNNING)
    make_stack("alpha", "a-err", status=StackStatus.ERROR)
    make_stack("alpha", "a-stop", status=StackStatus.STOPPED)
    make_stack("bravo", "b-err", status=StackStatus.ERROR)
    login(client, superuser)

    html = client.get(TENANT_CHANGELIST).content.decode()
    link = re.search(r'<td class="field-attention_count"><a href="([^"]+)"', html)
    assert link, "the error/stopped count of alpha links to its stacks"
    url = link.group(1).replace("&amp;", "&")

    assert sorted(stack_names(client.get(url))) == ["a-err", "a-stop"]


def _tenants_with_stacks(make_stack, first: int, last: int) -> None:
    statuses = [StackStatus.RUNNING, StackStatus.ERROR, StackStatus.DELETED, StackStatus.PENDING]
    for n in range(first, last):
        for i, status in enumerate(statuses):
            make_stack(
                f"tenant-{n:03d}",
                f"tenant-{n:03d}-stack-{i}",  # stack names are unique platform-wide
                status=status,
                domains={"webui": f"s{i}.t{n}.example.com", "api": f"api{i}.t{n}.example.com"},
            )


def test_tenant_changelist_query_count_does_not_grow_with_rows(client, superuser, make_stack):
    login(client, superuser)
    _tenants_with_stacks(make_stack, 0, 3)
    few = count_queries(client, TENANT_CHANGELIST)
    _tenants_with_stacks(make_stack, 3, 30)
    many = count_queries(client, TENANT_CHANGELIST)

    assert len(changelist_rows(client.get(TENANT_CHANGELIST))) == 30
    assert many == few


def test_stack_changelist_query_count_does_not_grow_with_rows(client, superuser, make_stack):
    def stacks(first: int, last: int) -> None:
        for n in range(first, last):
            make_stack(
                f"tenant-{n % 7}",
                f"stack-{n:03d}",
                status=StackStatus.RUNNING,
                domains={"webui": f"w{n}.example.com", "api": f"a{n}.example.com"},
                secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY},
            )

    login(client, superuser)
    stacks(0, 3)
    few = count_queries(client, STACK_CHANGELIST)
    stacks(3, 30)
    many = count_queries(client, STACK_CHANGELIST)

    rows = changelist_rows(client.get(STACK_CHANGELIST))
    assert len(rows) == 30
    assert rows[0]["domain_list"] == "api=a0.example.com, webui=w0.example.com"
    assert many == few


def test_tenant_change_page_query_count_does_not_grow_with_inline_stacks(
    client, superuser, make_tenant, make_stack
):
    tenant = make_tenant("customer-123")
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])

    def stacks(first: int, last: int) -> None:
        for n in range(first, last):
            make_stack(
                tenant,
                f"stack-{n:03d}",
                status=StackStatus.RUNNING,
                domains={"webui": f"w{n}.example.com", "api": f"a{n}.example.com"},
            )

    login(client, superuser)
    stacks(0, 3)
    few = count_queries(client, url)
    stacks(3, 20)
    make_stack(tenant, "stack-gone", status=StackStatus.DELETED)
    many = count_queries(client, url)

    html = client.get(url).content.decode()
    assert html.count(">w19.example.com</a>") == 1  # a link to the domain
    assert "stack-gone" not in html  # tombstones are not listed among the tenant's stacks
    assert many == few


# --- stack changelist: filters and search --------------------------------------------------------


@pytest.fixture
def three_stacks(make_stack) -> dict[str, Stack]:
    return {
        "main": make_stack(
            "customer-123",
            "customer-123-main",
            status=StackStatus.RUNNING,
            template_name="openclaw-agent",
            domains={"webui": "demo.customer123.com", "api": "api.customer123.com"},
            coolify_service_uuid="svc-uuid-aaaa1111",
            pocketbase_id="pbrec0000000001",
        ),
        "llm": make_stack(
            "customer-123",
            "customer-123-llm",
            status=StackStatus.ERROR,
            template_name="base-llm",
            domains={"webui": "llm.customer123.com"},
            coolify_service_uuid="svc-uuid-bbbb2222",
            pocketbase_id="pbrec0000000002",
        ),
        "other": make_stack(
            "customer-456",
            "customer-456-main",
            status=StackStatus.RUNNING,
            template_name="openclaw-agent",
            domains={"webui": "chat.example.org"},
            coolify_service_uuid="svc-uuid-cccc3333",
            pocketbase_id="pbrec0000000003",
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=error", ["customer-123-llm"]),
        ("status__exact=running", ["customer-123-main", "customer-456-main"]),
        ("template_name=base-llm", ["customer-123-llm"]),
        ("template_name=openclaw-agent", ["customer-123-main", "customer-456-main"]),
        ("tenant=customer-123", ["customer-123-llm", "customer-123-main"]),
        ("tenant=customer-456", ["customer-456-main"]),
        ("tenant=customer-999", []),
        ("tenant=+Customer-456+", ["customer-456-main"]),
        ("tenant=customer-123&status__exact=running", ["customer-123-main"]),
    ],
)
def test_stack_changelist_filters(client, superuser, three_stacks, query, expected):
    login(client, superuser)
    response = client.get(f"{STACK_CHANGELIST}?{query}")
    assert sorted(stack_names(response)) == expected


def test_stack_changelist_tenant_filter_is_a_text_box_not_a_link_per_tenant(
    client, superuser, make_stack
):
    for n in range(60):
        make_stack(f"customer-{n:03d}", f"customer-{n:03d}-main")
    login(client, superuser)

    html = client.get(STACK_CHANGELIST).content.decode()
    sidebar = html[html.index('id="changelist-filter"') :]

    assert re.search(r'<input[^>]*type="search"[^>]*name="tenant"', sidebar)
    assert "tenant=customer-" not in sidebar
    assert sidebar.count("<a ") < 30  # status and template links only, not one per tenant

    filtered = client.get(f"{STACK_CHANGELIST}?tenant=customer-007").content.decode()
    sidebar = filtered[filtered.index('id="changelist-filter"') :]
    assert re.search(r'<input[^>]*name="tenant"[^>]*value="customer-007"', sidebar)


def test_the_tenant_text_box_keeps_the_other_filters_and_the_search(client, superuser, make_stack):
    make_stack("customer-123", "customer-123-main", status=StackStatus.RUNNING)
    login(client, superuser)

    html = client.get(f"{STACK_CHANGELIST}?status__exact=running&q=main").content.decode()
    form = re.search(r'<form[^>]*class="cfadmin-text-filter".*?</form>', html, re.S)

    assert form
    assert '<input type="hidden" name="status__exact" value="running">' in form.group(0)
    assert '<input type="hidden" name="q" value="main">' in form.group(0)


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("customer-456", ["customer-456-main"]),  # tenant slug (and stack name)
        ("123-llm", ["customer-123-llm"]),  # stack name
        ("demo.customer123.com", ["customer-123-main"]),  # domain
        ("customer123.com", ["customer-123-llm", "customer-123-main"]),  # domains, no duplicates
        ("svc-uuid-bbbb2222", ["customer-123-llm"]),  # coolify service uuid
        ("pbrec0000000003", ["customer-456-main"]),  # pocketbase id
    ],
)
def test_stack_changelist_search(client, superuser, three_stacks, term, expected):
    login(client, superuser)
    assert sorted(stack_names(client.get(STACK_CHANGELIST, {"q": term}))) == expected


def test_stack_changelist_search_by_tenant_slug_only(client, superuser, make_stack):
    # Neither stack name nor domain contains the slug: only the tenant slug can match.
    make_stack("acme", "web", domains={"webui": "www.example.net"})
    make_stack("globex", "site", domains={"webui": "www.example.com"})
    login(client, superuser)
    rows = changelist_rows(client.get(STACK_CHANGELIST, {"q": "globex"}))
    assert [(row["stack_name"], row["tenant_link"]) for row in rows] == [("site", "globex")]


# --- remote ids are read-only ---------------------------------------------------------------------


def test_remote_ids_and_status_cannot_be_changed_from_the_change_page(client, operator, make_stack):
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        status=StackStatus.RUNNING,
        coolify_project_uuid="proj-uuid-1",
        coolify_service_uuid="svc-uuid-1",
        pocketbase_id="pbrec000000001",
        domains={"webui": "demo.customer123.com"},
    )
    url = reverse("admin:stacks_stack_change", args=[stack.pk])
    login(client, operator)
    page = client.get(url)
    html = page.content.decode()
    for name in ("coolify_service_uuid", "coolify_project_uuid", "pocketbase_id", "status"):
        assert f'name="{name}"' not in html
    assert "svc-uuid-1" in html  # shown, read-only

    data = form_data(page.content)
    data.update(
        coolify_service_uuid="svc-uuid-hijacked",
        coolify_project_uuid="proj-uuid-hijacked",
        pocketbase_id="pbrechijacked",
        status=StackStatus.DELETED,
        stack_name="renamed",
    )
    response = client.post(url, data)

    assert response.status_code == 302, response.context and response.context.get("errors")
    stack.refresh_from_db()
    assert stack.coolify_service_uuid == "svc-uuid-1"
    assert stack.coolify_project_uuid == "proj-uuid-1"
    assert stack.pocketbase_id == "pbrec000000001"
    assert stack.status == StackStatus.RUNNING
    assert stack.stack_name == "customer-123-main"  # baked into remote names once deployed


# --- secrets are write-only -----------------------------------------------------------------------


def _stack_url(tenant: Tenant) -> str:
    """The page of the tenant's stack, made bare (no domain, no secret) when it has none: the
    admin's only stack form (stacks are made by a deploy)."""
    stack = Stack.objects.filter(tenant=tenant).first() or Stack.objects.create(
        tenant=tenant,
        project_name=f"{tenant.slug}-project",
        stack_name=f"{tenant.slug}-main",
        template_name="openclaw-agent",
    )
    return reverse("admin:stacks_stack_change", args=[stack.pk])


def _add_stack_form(client, tenant: Tenant, **overrides: str) -> dict[str, str]:
    """The bare stack's page filled with a domain and two secrets."""
    page = client.get(_stack_url(tenant))
    assert page.status_code == 200
    data = form_data(page.content)
    for prefix in ("domains", "secrets"):
        assert f"{prefix}-TOTAL_FORMS" in data, f"no {prefix} inline on the stack page"
    for field in ("domains-0-service", "domains-0-domain", "secrets-0-key", "secrets-0-value"):
        assert field in data, f"no {field} on the stack page"
    data.update(
        {
            "domains-TOTAL_FORMS": "1",
            "domains-0-service": "webui",
            "domains-0-domain": "demo.customer123.com",
            "secrets-TOTAL_FORMS": "2",
            "secrets-0-key": "ANTHROPIC_API_KEY",
            "secrets-0-value": ANTHROPIC_KEY,
            "secrets-1-key": "TELEGRAM_BOT_TOKEN",
            "secrets-1-value": TELEGRAM_TOKEN,
        }
    )
    data.update(overrides)
    return data


def _secret(stack: Stack, key: str) -> StackSecret:
    return StackSecret.objects.get(stack=stack, key=key)


def _password_inputs(html: str) -> list[str]:
    return re.findall(r'<input[^>]*type="password"[^>]*>', html)


def test_secrets_are_write_only_through_the_admin(client, operator, make_tenant):
    tenant = make_tenant("customer-123")
    login(client, operator)

    response = client.post(_stack_url(tenant), _add_stack_form(client, tenant))

    assert response.status_code == 302, response.content.decode()[:3000]
    stack = Stack.objects.get(tenant=tenant, stack_name="customer-123-main")
    anthropic, telegram = _secret(stack, "ANTHROPIC_API_KEY"), _secret(stack, "TELEGRAM_BOT_TOKEN")
    assert anthropic.reveal() == ANTHROPIC_KEY
    assert telegram.reveal() == TELEGRAM_TOKEN
    assert ANTHROPIC_KEY not in anthropic.value_encrypted
    assert TELEGRAM_TOKEN not in telegram.value_encrypted
    assert list(stack.domains.values_list("service", "domain")) == [
        ("webui", "demo.customer123.com")
    ]

    change_url = reverse("admin:stacks_stack_change", args=[stack.pk])
    pages = {
        "change": change_url,
        "changelist": STACK_CHANGELIST,
        "search": f"{STACK_CHANGELIST}?q=customer",
        "history": reverse("admin:stacks_stack_history", args=[stack.pk]),
        "tenant": reverse("admin:tenants_tenant_change", args=[tenant.pk]),
        "tenants": TENANT_CHANGELIST,
        "audit": reverse("admin:cfadmin_auditevent_changelist"),
        "audit-search": reverse("admin:cfadmin_auditevent_changelist") + "?q=ANTHROPIC",
        **{
            f"audit-{event.pk}": reverse("admin:cfadmin_auditevent_change", args=[event.pk])
            for event in AuditEvent.objects.all()
        },
    }
    assert AuditEvent.objects.exists()
    for name, url in pages.items():
        page = client.get(url)
        assert page.status_code == 200, name
        for plaintext in (ANTHROPIC_KEY, TELEGRAM_TOKEN):
            assert plaintext.encode() not in page.content, f"{name} page shows a secret"
    trail = _all_admin_text()
    assert "Added stack secret “ANTHROPIC_API_KEY”" in trail  # the key is named, not the value
    assert ANTHROPIC_KEY not in trail
    assert TELEGRAM_TOKEN not in trail

    html = client.get(change_url).content.decode()
    assert f"sk-…{ANTHROPIC_KEY[-4:]}" in html
    assert "••••" in html
    assert anthropic.masked_value == f"sk-…{ANTHROPIC_KEY[-4:]}"
    assert telegram.masked_value == "••••"
    password_inputs = _password_inputs(html)
    assert len(password_inputs) >= 2  # the two stored secrets (+ the blank extra row)
    for tag in password_inputs:
        assert "value=" not in tag, tag

    # Saving the change form with the values left blank keeps what is stored.
    ciphertexts = (anthropic.value_encrypted, telegram.value_encrypted)
    data = form_data(html)
    assert data["secrets-0-key"] == "ANTHROPIC_API_KEY"
    assert data["secrets-0-value"] == "" and data["secrets-1-value"] == ""
    response = client.post(change_url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    anthropic.refresh_from_db()
    telegram.refresh_from_db()
    assert (anthropic.value_encrypted, telegram.value_encrypted) == ciphertexts
    assert anthropic.reveal() == ANTHROPIC_KEY
    assert telegram.reveal() == TELEGRAM_TOKEN

    # A new value replaces the old one.
    new_key = "sk-test-rotated-" + "R" * 40 + "9f3a"
    data = form_data(client.get(change_url).content)
    data["secrets-0-value"] = new_key
    response = client.post(change_url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    anthropic.refresh_from_db()
    telegram.refresh_from_db()
    assert anthropic.reveal() == new_key
    assert anthropic.masked_value == "sk-…9f3a"
    assert telegram.value_encrypted == ciphertexts[1]

    for url in (change_url, STACK_CHANGELIST, reverse("admin:cfadmin_auditevent_changelist")):
        content = client.get(url).content
        for plaintext in (ANTHROPIC_KEY, TELEGRAM_TOKEN, new_key):
            assert plaintext.encode() not in content, url
    trail = _all_admin_text()
    assert "Changed value for stack secret “ANTHROPIC_API_KEY”" in trail
    for plaintext in (ANTHROPIC_KEY, TELEGRAM_TOKEN, new_key):
        assert plaintext not in trail


def test_a_refused_add_form_does_not_echo_the_secret(client, operator, make_tenant):
    tenant = make_tenant("customer-123")
    login(client, operator)
    data = _add_stack_form(client, tenant, **{"domains-0-domain": "https://not a host/"})

    response = client.post(_stack_url(tenant), data)

    assert response.status_code == 200
    assert b"errornote" in response.content
    assert ANTHROPIC_KEY.encode() not in response.content
    assert TELEGRAM_TOKEN.encode() not in response.content
    assert not StackDomain.objects.exists() and not StackSecret.objects.exists()


def test_a_viewer_sees_the_stack_with_masked_secrets_only(client, viewer, make_stack):
    stack = make_stack(secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})
    login(client, viewer)

    response = client.get(reverse("admin:stacks_stack_change", args=[stack.pk]))

    assert response.status_code == 200
    assert f"sk-…{ANTHROPIC_KEY[-4:]}".encode() in response.content
    assert ANTHROPIC_KEY.encode() not in response.content
    assert b'type="password"' not in response.content


def test_a_new_secret_without_a_value_is_refused(client, operator, make_tenant):
    tenant = make_tenant("customer-123")
    login(client, operator)
    data = _add_stack_form(client, tenant, **{"secrets-TOTAL_FORMS": "1", "secrets-0-value": ""})

    response = client.post(_stack_url(tenant), data)

    assert response.status_code == 200
    inlines = response.context["inline_admin_formsets"]
    secrets = next(i.formset for i in inlines if i.formset.prefix == "secrets")
    assert "value" in secrets.forms[0].errors
    assert "Enter a value for a new secret." in response.content.decode()
    assert not StackSecret.objects.exists()
    assert not StackDomain.objects.exists()


def test_a_new_secret_without_a_value_is_refused_on_an_existing_stack(client, operator, make_stack):
    stack = make_stack(secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})
    url = reverse("admin:stacks_stack_change", args=[stack.pk])
    login(client, operator)
    data = form_data(client.get(url).content)
    data.update({"secrets-TOTAL_FORMS": "2", "secrets-1-key": "OPENAI_API_KEY"})

    response = client.post(url, data)

    assert response.status_code == 200
    assert "Enter a value for a new secret." in response.content.decode()
    assert list(stack.secrets.values_list("key", flat=True)) == ["ANTHROPIC_API_KEY"]


# --- tenant page ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("persona", "shown"), [("operator", True), ("viewer", False)])
def test_tenant_page_links_to_deploy_a_stack_for_operators_only(
    client, make_tenant, request, persona, shown
):
    tenant = make_tenant("customer-123")
    login(client, request.getfixturevalue(persona))

    response = client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Add stack for this tenant" not in html  # stacks are made by a deploy
    assert ("Deploy a new stack" in html) is shown
    if shown:
        link = re.search(r'<a href="([^"]+)"[^>]*>Deploy a new stack', html)
        assert link
        assert link.group(1) == reverse("admin:stacks_stack_deploy") + "?tenant=customer-123"
        assert client.get(link.group(1)).status_code == 200


# --- health probe --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_answers_any_host_and_skips_the_ssl_redirect(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/healthz", HTTP_HOST="10.0.3.7:8000")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"ok": True}


@pytest.mark.django_db
def test_other_paths_still_check_the_host(client):
    assert client.get("/admin/login/", HTTP_HOST="evil.example").status_code == 400


# --- tenant autocomplete (the stack form's tenant field) ------------------------------------------


def test_tenant_autocomplete_is_sorted_and_pages_without_gaps(client, operator, make_tenant):
    slugs = [f"customer-{n:03d}" for n in range(25)]
    for slug in reversed(slugs):  # ids in the opposite order of slugs
        make_tenant(slug)
    login(client, operator)
    url = reverse("admin:autocomplete")
    params = {"app_label": "stacks", "model_name": "stack", "field_name": "tenant"}

    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnorderedObjectListWarning)
        for page in (1, 2):
            response = client.get(url, {**params, "term": "customer", "page": page})
            assert response.status_code == 200
            seen += [result["text"] for result in response.json()["results"]]

    assert seen == slugs
    assert not [w for w in caught if issubclass(w.category, UnorderedObjectListWarning)]
