"""An incident's postmortem (issue 15 point 7): written only once resolved (a clear refusal
otherwise), every edit on the timeline and in the audit, follow-ups with owners and due dates;
the Markdown export holds every section, the evidence hashes, and user text escaped."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from cfadmin.models import AuditEvent
from ops import checklists, incidents
from ops.models import (
    EscalationContact,
    IncidentEventKind,
    IncidentStatus,
    ItemState,
    Procedure,
)
from ops.models.postmortem import Postmortem, PostmortemFollowUp
from ops.response import postmortem as feature
from ops.response import postmortem_export as export
from ops.response import postmortem_rules as rules
from tests.unit.incident_helpers import (
    change_url,
    events,
    login,
    make_incident,
    messages_of,
    page,
    work_url,
)

SECTIONS = {
    "impact": "Three tenants' bots answered nothing for 40 minutes.",
    "root_cause": "A leaked bot token was used to flood the API.",
    "went_well": "Rotation across stacks took two minutes.",
    "went_badly": "Nobody saw the leak for a day.",
}


def resolved_incident(actor, **fields):
    incident = make_incident(actor, **fields)
    incidents.change_status(
        incident, IncidentStatus.RESOLVED, actor=actor, resolution="Rotated the token everywhere."
    )
    return incident


def export_url(incident) -> str:
    return reverse("admin:ops_incident_postmortem_export", args=[incident.pk])


# --- only once resolved ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_postmortem_is_refused_before_the_incident_is_resolved(support, client: Client):
    incident = make_incident(support, status=IncidentStatus.MITIGATED)

    for write, form in (
        (rules.save_sections, SECTIONS),
        (rules.add_follow_up, {"text": "x", "owner": str(support.pk), "due_on": "2030-01-01"}),
        (rules.set_follow_up_done, {"follow_up": "1", "done": "1"}),
    ):
        with pytest.raises(ValidationError, match="once the incident is resolved"):
            write(incident, form, actor=support)
    assert feature.forms(incident, support) == ()
    assert feature.panel(incident, None) is None

    response = login(client, support).post(
        work_url(incident, "postmortem_save"), SECTIONS, follow=True
    )
    assert messages_of(response) == [f"Nothing changed: {rules.NOT_RESOLVED}"]
    assert not Postmortem.objects.exists()
    assert events(incident, IncidentEventKind.POSTMORTEM) == []


@pytest.mark.django_db
def test_writing_the_sections_is_on_the_timeline_and_audited(support):
    incident = resolved_incident(support)

    changed = rules.save_sections(incident, SECTIONS, actor=support)

    assert changed == ["Impact", "Root cause", "What went well", "What went badly"]
    written = Postmortem.objects.get(incident=incident)
    assert (written.impact, written.went_badly) == (SECTIONS["impact"], SECTIONS["went_badly"])
    assert written.updated_by == support and written.updated_by_repr == "support"
    line = "Postmortem: wrote impact, root cause, what went well, what went badly"
    assert events(incident, IncidentEventKind.POSTMORTEM) == [line]
    audit = AuditEvent.objects.filter(target_id=str(incident.pk), message=line).get()
    assert audit.actor == support
    assert audit.changes["fields"]["root_cause"] == ["", SECTIONS["root_cause"]]

    # Saving the same again records nothing; one changed section, one line naming it.
    assert rules.save_sections(incident, SECTIONS, actor=support) == []
    assert rules.save_sections(incident, {"impact": "Five tenants."}, actor=support) == ["Impact"]
    written.refresh_from_db()
    assert (written.impact, written.root_cause) == ("Five tenants.", SECTIONS["root_cause"])
    assert events(incident, IncidentEventKind.POSTMORTEM)[1:] == ["Postmortem: wrote impact"]


@pytest.mark.django_db
def test_follow_ups_need_a_staff_owner_and_a_due_date_and_are_ticked_done(support, viewer):
    incident = resolved_incident(support)
    good = {"text": "Scan tickets for tokens", "owner": str(support.pk), "due_on": "2030-01-31"}

    for bad, error in (
        ({**good, "text": "  "}, "Say what is to be done"),
        ({**good, "owner": str(viewer.pk)}, "Choose who owns"),  # a viewer cannot work incidents
        ({**good, "owner": "nobody"}, "Choose who owns"),
        ({**good, "due_on": ""}, "due date"),
        ({**good, "due_on": "2030-02-31"}, "due date"),
    ):
        with pytest.raises(ValidationError, match=error):
            rules.add_follow_up(incident, bad, actor=support)
    assert not PostmortemFollowUp.objects.exists()

    follow_up = rules.add_follow_up(incident, good, actor=support)
    assert (follow_up.owner, follow_up.due_on, follow_up.done) == (
        support,
        date(2030, 1, 31),
        False,
    )
    rules.set_follow_up_done(incident, {"follow_up": str(follow_up.pk), "done": "1"}, actor=support)
    follow_up.refresh_from_db()
    assert follow_up.done and follow_up.done_at is not None
    with pytest.raises(ValidationError, match="already done"):
        rules.set_follow_up_done(
            incident, {"follow_up": str(follow_up.pk), "done": "1"}, actor=support
        )
    other = resolved_incident(support, title="Another")
    with pytest.raises(ValidationError, match="No such follow-up"):
        rules.set_follow_up_done(
            other, {"follow_up": str(follow_up.pk), "done": "0"}, actor=support
        )
    assert events(incident, IncidentEventKind.POSTMORTEM) == [
        "Postmortem follow-up: Scan tickets for tokens (owner support, due 2030-01-31)",
        "Postmortem follow-up done: Scan tickets for tokens",
    ]


# --- the page ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_resolved_incident_page_offers_the_forms_to_support_and_shows_the_panel(
    support, viewer, client: Client
):
    incident = resolved_incident(support)
    rules.save_sections(incident, {"impact": "Bots <b>silent</b>"}, actor=support)
    rules.add_follow_up(
        incident,
        {"text": "Add a token scanner", "owner": str(support.pk), "due_on": "2030-01-31"},
        actor=support,
    )

    html = page(login(client, support).get(change_url(incident)))
    for form_id in ("cf-incident-postmortem-form", "cf-incident-postmortem-followup-form"):
        assert f'id="{form_id}"' in html
    assert 'id="cf-panel-postmortem"' in html
    assert export_url(incident) in html
    assert "Add a token scanner" in html
    raw = login(Client(), support).get(change_url(incident)).content.decode()
    assert "<b>silent</b>" not in raw  # escaped by the template

    assert feature.forms(incident, viewer) == ()
    viewer_page = page(login(Client(), viewer).get(change_url(incident)))
    assert 'id="cf-incident-postmortem-form"' not in viewer_page
    assert 'id="cf-panel-postmortem"' in viewer_page


@pytest.mark.django_db
def test_posting_the_forms_saves_and_reports(support, client: Client):
    incident = resolved_incident(support)
    login(client, support)

    response = client.post(work_url(incident, "postmortem_save"), SECTIONS, follow=True)
    assert messages_of(response) == [
        "Postmortem saved: impact, root cause, what went well, what went badly."
    ]
    response = client.post(
        work_url(incident, "postmortem_followup"),
        {"text": "Rotate quarterly", "owner": str(support.pk), "due_on": "2030-03-01"},
        follow=True,
    )
    assert messages_of(response) == ["Follow-up added for support."]
    follow_up = PostmortemFollowUp.objects.get()
    response = client.post(
        work_url(incident, "postmortem_followup_done"),
        {"follow_up": str(follow_up.pk), "done": "1"},
        follow=True,
    )
    assert messages_of(response) == ["Follow-up done: Rotate quarterly"]


@pytest.mark.django_db
def test_a_viewer_cannot_write_the_postmortem(viewer, support, client: Client):
    incident = resolved_incident(support)

    response = login(client, viewer).post(work_url(incident, "postmortem_save"), SECTIONS)

    assert response.status_code == 403
    assert not Postmortem.objects.exists()


# --- the Markdown export -----------------------------------------------------------------------


def evidence_item(incident, stack, content: str):
    from ops.models.evidence import EvidenceItem

    return EvidenceItem.objects.create(
        incident=incident,
        stack=stack,
        kind="logs",
        title="webui logs | [click](http://evil.example)",
        content=content,
        captured_by_repr="support",
    )


@pytest.mark.django_db
def test_the_export_holds_every_section_and_the_evidence_hashes(support, make_stack):
    stack = make_stack("customer-123")
    incident = make_incident(
        support,
        title="Bot token leaked",
        severity="sev2",
        escalation=EscalationContact.objects.get(issue_type="Security Incident"),
        summary="A token was pasted in a public ticket.",
    )
    incident.stacks.add(stack)
    incident.tenants.add(stack.tenant)
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    incidents.add_note(incident, "Rotating now", actor=support)
    first = evidence_item(incident, stack, "line one\nline two")
    second = evidence_item(incident, stack, "ps aux output")
    run = checklists.start_run(
        Procedure.objects.get(slug="api-key-exposure", active=True),
        actor=support,
        incident=incident,
    )
    item = run.items.order_by("step__position").last()
    checklists.settle_item(item, ItemState.SKIPPED, actor=support, note="tracked here")
    incidents.change_status(
        incident, IncidentStatus.RESOLVED, actor=support, resolution="Rotated everywhere."
    )
    rules.save_sections(incident, SECTIONS, actor=support)
    rules.add_follow_up(
        incident,
        {"text": "Scan tickets", "owner": str(support.pk), "due_on": "2030-01-31"},
        actor=support,
    )

    text = export.export_markdown(incident)

    headings = re.findall(r"^#{1,3} .*$", text, re.M)
    assert headings[0] == f"# Incident #{incident.pk}: Bot token leaked"
    for heading in (
        "## Summary",
        "## Resolution",
        "## Timeline",
        "## Evidence",
        "## Checklist runs",
        "## Postmortem",
        "### Impact",
        "### Root cause",
        "### What went well",
        "### What went badly",
        "### Follow-ups",
    ):
        assert heading in headings, heading
    assert "| Severity | SEV2 — many customers affected |" in text
    assert "| Issue type | Security Incident (Security Team) |" in text
    assert "| Status | Resolved |" in text
    assert "| Response target | met (responded in time" in text
    assert "| Tenants | customer-123 |" in text
    assert f"| Stacks | {stack} |" in text
    assert "A token was pasted in a public ticket." in text
    assert "Rotated everywhere." in text
    assert "— Note — support: Rotating now" in text
    assert "— Postmortem — support: Postmortem: wrote impact" in text
    for found in (first, second):
        assert len(found.sha256) == 64
        assert f"`{found.sha256}`" in text
    assert "webui logs \\| \\[click\\](http://evil.example)" in text
    assert "### API key exposure" in text
    assert "- [x] 4. Document in the incident tracking system — Skipped by support" in text
    assert "— tracked here" in text
    for value in SECTIONS.values():
        assert value in text
    assert "| Scan tickets | support | 2030-01-31 | open |" in text


@pytest.mark.django_db
def test_user_text_cannot_break_the_documents_structure(support):
    hostile = (
        "# Owned | x |\n## Fake section\n- [x] done\n1. list\n    code\n<script>alert(1)</script>"
    )
    incident = make_incident(
        support, title="# Title | with [link](javascript:x) <b>", summary=hostile
    )
    incidents.add_note(incident, hostile, actor=support)
    incidents.change_status(incident, IncidentStatus.RESOLVED, actor=support, resolution=hostile)
    rules.save_sections(incident, {"impact": hostile, "root_cause": "---"}, actor=support)

    text = export.export_markdown(incident)

    lines = text.splitlines()
    assert lines[0] == (
        f"# Incident #{incident.pk}: \\# Title \\| with \\[link\\](javascript:x) \\<b\\>"
    )
    assert not any(
        line.startswith(("# Owned", "## Fake", "- [x] done", "1. list")) for line in lines
    )
    assert not any(line.startswith("    ") or line == "---" for line in lines)
    assert "<script>" not in text and "\\<script\\>" in text
    assert [line for line in lines if line.startswith("## ")] == [
        "## Summary",
        "## Resolution",
        "## Timeline",
        "## Evidence",
        "## Checklist runs",
        "## Postmortem",
    ]
    assert "\\# Owned \\| x \\|  " in lines  # the summary's first line, a line break kept
    assert "1\\. list  " in lines


def test_escaping_rules():
    assert export.inline("a\nb  c") == "a b c"
    assert export.escape_line("  + item") == "\\+ item"
    assert export.escape_line("12) x") == "12\\) x"
    assert export.escape_line("2026 was fine") == "2026 was fine"
    assert export.escape_line("a_b*c`d~e&f") == "a\\_b\\*c\\`d\\~e\\&f"
    assert export.block("") == "_None._"


@pytest.mark.django_db
def test_the_export_downloads_for_anyone_who_may_view_the_incident(viewer, support, client):
    incident = resolved_incident(support, title="Disk full")

    response = login(client, viewer).get(export_url(incident))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="incident-{incident.pk}-postmortem.md"'
    )
    assert response.content.decode().startswith(f"# Incident #{incident.pk}: Disk full\n")
    assert "_No postmortem written._" in response.content.decode()
    anonymous = Client().get(export_url(incident))
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert (
        login(Client(), viewer)
        .get(export_url(incident).replace(f"/{incident.pk}/", "/999999/"))
        .status_code
        == 404
    )
