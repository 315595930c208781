"""The escalation table: who responds to which issue type, and by when."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models


class EscalationContact(models.Model):
    """The runbook's escalation table, with the details a person needs at 3 a.m."""

    issue_type = models.CharField(max_length=100, unique=True)
    team = models.CharField(max_length=100)
    response_minutes = models.PositiveIntegerField(help_text="Target time to respond.")
    business_hours_only = models.BooleanField(
        default=False, help_text="The target counts business hours only."
    )
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower comes first.")
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    chat = models.CharField(max_length=200, blank=True, help_text="Channel or pager handle.")
    hours = models.CharField(max_length=100, blank=True, default="24/7")
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["priority", "issue_type"]

    def __str__(self) -> str:
        return f"{self.issue_type} → {self.team}"

    @property
    def response_target(self) -> str:
        minutes = self.response_minutes
        text = f"{minutes // 60}h" if minutes % 60 == 0 and minutes >= 60 else f"{minutes}min"
        return f"{text} business" if self.business_hours_only else text

    def response_due(self, start: datetime) -> datetime:
        """When this team should have responded to something raised at `start`."""
        if self.business_hours_only:
            return settings.BUSINESS_HOURS.add(start, self.response_minutes)
        return start + timedelta(minutes=self.response_minutes)
