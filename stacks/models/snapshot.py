"""A remote read shared by all workers (Coolify's service statuses), with when it was made."""

from __future__ import annotations

from django.db import models


class RemoteSnapshot(models.Model):
    """The last answer of a bulk read (e.g. every Coolify service's status), shared by workers.

    Coolify allows 200 calls a minute: one `GET /services` per polling round serves every
    stack in flight in every worker, instead of one call per stack.
    """

    name = models.CharField(max_length=200, primary_key=True)
    data = models.JSONField(default=dict)
    fetched_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name
