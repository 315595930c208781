"""The stack admin's containment (issue 15): isolate and release, as list actions with a
confirmation page and as buttons on the stack's page. The work is stacks.services'; the rules
are stacks.choices' (containment_refusal)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from stacks import permissions
from stacks.choices import OperationKind
from stacks.models import Operation, Stack
from stacks.provisioning.containment_steps import network_disconnect_commands

CONTAIN_BUTTONS = [
    ("isolate_stacks", "Isolate…", OperationKind.ISOLATE, True),
    ("release_stacks", "Release…", OperationKind.RELEASE, False),
]


class StackContainmentMixin:
    """Mixed into StackAdmin before StackOperationsMixin (whose confirmation page it uses)."""

    def has_contain_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.CONTAIN)

    @admin.action(
        description="Isolate selected stacks (domains off, stopped; volumes kept)…",
        permissions=["contain"],
    )
    def isolate_stacks(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return self._confirm_then_queue(  # type: ignore[attr-defined]
            request, queryset, OperationKind.ISOLATE, "isolate_stacks"
        )

    @admin.action(
        description="Release selected stacks (restore their domains, start)…",
        permissions=["contain"],
    )
    def release_stacks(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return self._confirm_then_queue(  # type: ignore[attr-defined]
            request, queryset, OperationKind.RELEASE, "release_stacks"
        )

    def stack_buttons(
        self, request: HttpRequest, stack: Stack, last: Operation | None
    ) -> list[dict[str, Any]]:
        buttons = super().stack_buttons(request, stack, last)  # type: ignore[misc]
        if not self.has_contain_permission(request):
            return buttons
        ours = [
            {
                "action": action,
                # Isolating again is allowed (it resumes and re-checks): say so.
                "label": "Isolate again…"
                if kind == OperationKind.ISOLATE and stack.is_isolated
                else label,
                "danger": danger,
            }
            for action, label, kind, danger in CONTAIN_BUTTONS
            if stack.accepts(kind)
        ]
        # Delete stays the last button.
        at = next((i for i, b in enumerate(buttons) if b["action"] == "delete_stacks"), None)
        at = len(buttons) if at is None else at
        return [*buttons[:at], *ours, *buttons[at:]]

    def containment_context(self, stack: Stack) -> dict[str, Any]:
        """The stack page's containment section: the server commands Coolify's API cannot
        run (templates/admin/stacks/stack/change_form.html)."""
        if not stack.is_isolated:
            return {}
        return {
            "containment_isolated": True,
            "containment_commands": network_disconnect_commands(stack),
        }
