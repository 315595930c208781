"""Customer updates (issue 16 point 6): from an incident, one e-mail per affected tenant contact
(linked directly or through a linked stack), written from an editable template, previewed and
editable before sending, delivered by the worker to a real SMTP server, recorded on the
timeline; never twice on a double submit, never a secret, never by a viewer."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils.module_loading import import_string

from ops.models import CustomerMessageTemplate, IncidentEventKind, Notification, NotifyEvent
from ops.models.notifications import DeliveryStatus
from ops.notifications import customer_updates as rules
from ops.response import customer_updates as feature
from tests.unit.incident_helpers import change_url, events, login, make_incident, messages_of, page
from tests.unit.notification_helpers import add_channel, contact

pytestmark = pytest.mark.django_db

STACK_SECRET = "canary-stack-secret-7f3a9c"
CHANNEL_TOKEN = "canary-channel-token-51bd"
NEWS = "Bots answer again; we watch the API for another hour."


class Worker:
    """The jobs delivery queued, run when the test says (as django-q2's worker would)."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, tuple]] = []

    def run(self) -> None:
        done, self.queued = self.queued, []
        for func, args in done:
            import_string(func)(*args)


@pytest.fixture
def worker(monkeypatch) -> Worker:
    jobs = Worker()
    monkeypatch.setattr(
        "ops.notifications.delivery.enqueue", lambda func, *args: jobs.queued.append((func, args))
    )
    return jobs


@pytest.fixture
def template() -> CustomerMessageTemplate:
    return CustomerMessageTemplate.objects.create(
        name="Incident update (test)",
        subject="[$status] $incident",
        body="Hello $tenant,\n\n$update\n\nCosts stay $5 a month.\nFollow it on $status_page\n",
    )


@pytest.fixture
def incident(support, make_tenant, make_stack):
    """Affects acme (linked), beta (through its stack), gamma (no e-mail); delta is unrelated."""
    incident = make_incident(support, title="db pool exhausted on pb-2", public_title="API errors")
    acme = make_tenant("acme", name="Acme Ltd", contact_email="ops@acme.test")
    beta = make_tenant("beta", name="Beta GmbH", contact_email="it@beta.test")
    gamma = make_tenant("gamma", name="Gamma", contact_email="")
    make_tenant("delta", name="Delta", contact_email="help@delta.test")
    stack = make_stack(beta, "beta-main", secrets={"TELEGRAM_BOT_TOKEN": STACK_SECRET})
    incident.tenants.add(acme, gamma)
    incident.stacks.add(stack)
    add_channel(contact("Platform Down"), f"json://127.0.0.1:9/{CHANNEL_TOKEN}")
    return incident


def text_of(response) -> str:
    """The page's text without its tags, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def compose_url(incident) -> str:
    return reverse("admin:ops_incident_customer_update", args=[incident.pk])


def send_form(chosen, **changes) -> dict[str, str]:
    form = {
        "template": str(chosen.pk),
        "loaded": str(chosen.pk),
        "update": NEWS,
        "subject": chosen.subject,
        "body": chosen.body,
        "_send": "1",
    }
    form.update(changes)
    return form


# --- preview ------------------------------------------------------------------------------------


def test_the_preview_fills_in_each_affected_tenant_with_a_contact(incident, template):
    draft = rules.read_draft({"template": str(template.pk), "update": NEWS})

    previews = rules.preview(incident, draft)

    assert [(p.tenant.slug, p.subject) for p in previews] == [
        ("acme", "[Open] API errors"),  # the public title, never the internal one
        ("beta", "[Open] API errors"),
    ]
    status_page = "http://127.0.0.1:8000/status/"
    assert previews[1].body == (
        f"Hello Beta GmbH,\n\n{NEWS}\n\nCosts stay $5 a month.\nFollow it on {status_page}"
    )


def test_the_compose_page_shows_each_message_and_keeps_the_operators_edits(
    incident, template, support, client: Client
):
    login(client, support)
    response = client.post(compose_url(incident), {"template": template.pk, "update": NEWS})
    text = text_of(response)
    assert response.status_code == 200
    assert "To Acme Ltd <ops@acme.test>: [Open] API errors" in text
    assert "To Beta GmbH <it@beta.test>: [Open] API errors" in text
    assert "Hello Beta GmbH," in text and NEWS in text
    assert "Send to 2 tenant contacts" in text
    assert "Gamma" not in text and "delta" not in text

    edited = {**send_form(template), "subject": "Update: $incident is fixed"}
    del edited["_send"]
    response = client.post(compose_url(incident), edited)
    assert "To Acme Ltd <ops@acme.test>: Update: API errors is fixed" in text_of(response)
    assert 'value="Update: $incident is fixed"' in page(response)  # the edit stays
    assert not Notification.objects.exists()  # a preview sends nothing


def test_the_incident_page_offers_the_form_to_support(incident, template, support, client):
    html = page(login(client, support).get(change_url(incident)))
    assert 'id="cf-incident-customer-update-form"' in html
    assert f'<option value="{template.pk}">{template.name}</option>' in html


# --- sending ----------------------------------------------------------------------------------


def test_sending_mails_each_tenant_contact_with_the_link_and_no_secret(
    incident, template, support, client, smtp_server, worker
):
    login(client, support)
    form = send_form(template, subject="Update for $tenant: $incident")

    response = client.post(compose_url(incident), form, follow=True)

    assert messages_of(response) == ["Customer update queued for 2 tenant contacts."]
    rows = list(Notification.objects.order_by("to_address"))
    assert [(r.event, r.to_address, r.status, r.incident_id) for r in rows] == [
        (NotifyEvent.CUSTOMER_UPDATE, "it@beta.test", DeliveryStatus.PENDING, incident.pk),
        (NotifyEvent.CUSTOMER_UPDATE, "ops@acme.test", DeliveryStatus.PENDING, incident.pk),
    ]
    assert smtp_server.messages == []  # nothing sent in the request

    worker.run()

    by_address = {message["To"]: message for message in smtp_server.messages}
    assert set(by_address) == {"ops@acme.test", "it@beta.test"}
    assert by_address["ops@acme.test"]["Subject"] == "Update for Acme Ltd: API errors"
    for body in smtp_server.bodies():
        assert NEWS in body
        assert body.count("http://127.0.0.1:8000/status/") == 1
    for raw in smtp_server.raw:
        for secret in (STACK_SECRET, CHANNEL_TOKEN, "db pool exhausted"):
            assert secret not in raw
    assert {row.status for row in Notification.objects.all()} == {DeliveryStatus.SENT}
    assert events(incident, IncidentEventKind.CUSTOMER_UPDATE) == [
        "Customer update sent to 2 tenants: Update for $tenant: API errors"
    ]


def test_a_template_without_the_status_page_still_links_it(
    incident, template, support, smtp_server, worker
):
    rules.send(incident, send_form(template, body="Hi $tenant: $update"), actor=support)
    worker.run()
    assert len(smtp_server.messages) == 2
    for body in smtp_server.bodies():
        assert body.rstrip().endswith(f"{NEWS}\r\n\r\nhttp://127.0.0.1:8000/status/")


def test_a_double_submit_sends_each_mail_once(
    incident, template, support, client, smtp_server, worker
):
    login(client, support)
    first = client.post(compose_url(incident), send_form(template), follow=True)
    assert messages_of(first) == ["Customer update queued for 2 tenant contacts."]
    again = client.post(compose_url(incident), send_form(template), follow=True)

    assert messages_of(again) == ["This update was sent already: nothing was sent twice."]
    worker.run()
    assert sorted(message["To"] for message in smtp_server.messages) == [
        "it@beta.test",
        "ops@acme.test",
    ]
    statuses = sorted(Notification.objects.values_list("status", flat=True))
    assert statuses == [DeliveryStatus.SENT] * 2 + [DeliveryStatus.SUPPRESSED] * 2
    assert len(events(incident, IncidentEventKind.CUSTOMER_UPDATE)) == 1


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"template": "", "loaded": ""}, "template", "Message template"),
        ({"body": "   "}, "body", "Message: the body is empty"),
        ({"subject": ""}, "subject", "Subject"),
    ],
)
def test_errors_name_the_field_and_send_nothing(
    incident, template, support, client, changes, field, text
):
    with pytest.raises(ValidationError) as raised:
        rules.send(incident, send_form(template, **changes), actor=support)
    assert list(raised.value.message_dict) == [field]
    assert raised.value.message_dict[field][0].startswith(text)

    html = page(login(client, support).post(compose_url(incident), send_form(template, **changes)))
    assert f'data-field="{field}">{text}' in html
    assert not Notification.objects.exists()
    assert events(incident, IncidentEventKind.CUSTOMER_UPDATE) == []


def test_an_incident_without_tenant_contacts_is_refused_by_name(template, support, make_tenant):
    incident = make_incident(support)
    incident.tenants.add(make_tenant("gamma", contact_email=""))

    with pytest.raises(ValidationError) as raised:
        rules.send(incident, send_form(template), actor=support)

    assert raised.value.message_dict == {"tenants": [rules.NO_RECIPIENTS]}
    assert not Notification.objects.exists()
    form = feature.forms(incident, support)[0]
    assert form.has_recipients is False and form.templates == ()


def test_a_viewer_cannot_message_customers(incident, template, viewer, client):
    login(client, viewer)
    assert client.get(compose_url(incident)).status_code == 403
    assert client.post(compose_url(incident), send_form(template)).status_code == 403
    assert not Notification.objects.exists()
    assert feature.forms(incident, viewer) == ()


def test_a_template_with_an_unknown_placeholder_is_refused_naming_the_field(admin_role, client):
    response = login(client, admin_role).post(
        reverse("admin:ops_customermessagetemplate_add"),
        {"name": "Typo", "subject": "$incident", "body": "Dear $tennant", "active": "on"},
    )
    assert response.status_code == 200
    assert "Body: unknown placeholder $tennant" in page(response)
    assert not CustomerMessageTemplate.objects.filter(name="Typo").exists()
