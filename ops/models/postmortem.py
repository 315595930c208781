"""An incident's postmortem (issue 15): what it did to customers, why it happened, what went
well and badly, and the follow-ups, each with an owner and a due date. Written once resolved."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from ops.models.incidents import Incident

# The postmortem's text sections, in the order they are shown and exported: (field, heading).
POSTMORTEM_SECTIONS: tuple[tuple[str, str], ...] = (
    ("impact", "Impact"),
    ("root_cause", "Root cause"),
    ("went_well", "What went well"),
    ("went_badly", "What went badly"),
)


class Postmortem(models.Model):
    """One per incident; edited in place (each edit audited and on the timeline)."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    impact = models.TextField(blank=True, help_text="Who was affected, how, for how long.")
    root_cause = models.TextField("root cause", blank=True)
    went_well = models.TextField("what went well", blank=True)
    went_badly = models.TextField("what went badly", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by_repr = models.CharField("last edited by", max_length=150, blank=True)

    def __str__(self) -> str:
        return f"Postmortem of incident #{self.incident_id}"

    def sections(self) -> list[tuple[str, str]]:
        """(heading, text) of each section, in order."""
        return [(heading, getattr(self, name)) for name, heading in POSTMORTEM_SECTIONS]

    @property
    def is_empty(self) -> bool:
        return not any(text.strip() for _, text in self.sections())


class PostmortemFollowUp(models.Model):
    """Something to do so it does not happen again: who does it, by when, and whether it is done."""

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="follow_ups")
    text = models.CharField(max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner_repr = models.CharField("owner", max_length=150)
    due_on = models.DateField("due", null=True, blank=True)
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["postmortem", "done", "due_on", "id"]

    def __str__(self) -> str:
        return self.text

    @property
    def is_overdue(self) -> bool:
        return not self.done and self.due_on is not None and self.due_on < timezone.localdate()
