"""Create (or complete) PocketBase's agent_stacks collection. Safe to run again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from stacks.clients.errors import ClientError
from stacks.provisioning import get_pocketbase


class Command(BaseCommand):
    help = "Ensure the agent_stacks collection exists in PocketBase with cfadmin's schema."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with get_pocketbase() as pocketbase:
                changed = pocketbase.ensure_collection()
        except ClientError as error:
            raise CommandError(str(error)) from None
        self.stdout.write("agent_stacks: " + ("created or completed" if changed else "up to date"))
