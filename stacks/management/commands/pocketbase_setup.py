"""Create (or complete) PocketBase's agent_stacks collection. Safe to run again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from cfadmin.management.json_output import CommandFailure, JsonCommand
from stacks.clients.errors import ClientError
from stacks.provisioning import get_pocketbase


class Command(JsonCommand):
    json_always = False  # text unless --json
    help = "Ensure the agent_stacks collection exists in PocketBase with cfadmin's schema."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with get_pocketbase() as pocketbase:
                changed = pocketbase.ensure_collection()
        except ClientError as error:
            raise CommandFailure("pocketbase_error", str(error)) from None
        if options["json"]:
            self.write_json({"ok": True, "collection": "agent_stacks", "changed": changed})
            return
        self.stdout.write("agent_stacks: " + ("created or completed" if changed else "up to date"))
