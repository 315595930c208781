"""What a provisioning step returns or raises, and the operator's next move after a failure."""

from __future__ import annotations

from typing import NamedTuple

from stacks.choices import StepOutcome
from stacks.clients.coolify import MissingAbility
from stacks.clients.errors import ClientError, Conflict


class StepFailed(Exception):
    def __init__(self, step: str, reason: str, hint: str) -> None:
        super().__init__(f"step {step!r} failed: {reason}")
        self.step = step
        self.reason = reason
        self.hint = hint


class Outcome(NamedTuple):
    """What a step returns: its outcome and a short detail for the operation page."""

    outcome: StepOutcome
    detail: str = ""


def done(detail: str = "") -> Outcome:
    return Outcome(StepOutcome.DONE, detail)


def already(detail: str) -> Outcome:
    return Outcome(StepOutcome.ALREADY_DONE, detail)


def skipped(detail: str) -> Outcome:
    return Outcome(StepOutcome.SKIPPED, detail)


def deferred(detail: str) -> Outcome:
    return Outcome(StepOutcome.DEFERRED, detail)


def hint_for(step: str, error: Exception) -> str:
    """What an operator should do next, in one sentence."""
    if isinstance(error, MissingAbility):
        return (
            f"Give the Coolify API token the '{error.ability}' ability (or root) in "
            "Coolify → Keys & Tokens, then retry the operation."
        )
    if isinstance(error, ClientError) and error.status == 401:
        return f"Check the {error.service} credentials in cfadmin's settings, then retry."
    if isinstance(error, ClientError) and error.status == 403:
        return (
            f"{error.service} refused access (API disabled, IP allow-list or missing "
            "permission); fix that, then retry."
        )
    if isinstance(error, Conflict):
        return "Another Coolify resource uses this domain: free it or change the stack's domain."
    if isinstance(error, ClientError) and error.transient:
        return (
            f"{error.service} did not answer properly; check it is up, then retry — the "
            "retry resumes where this attempt stopped."
        )
    if step == "render":
        return "Fix the template or the stack's inputs (run `manage.py audit_templates`)."
    if step in ("wait_healthy", "wait_stopped"):
        return (
            "Check the service's logs in Coolify (runbook: Stack Not Responding), then "
            "retry or redeploy."
        )
    if step == "confirm_deleted":
        return (
            "Coolify has not finished deleting the service: check it in Coolify, then "
            "retry the delete."
        )
    return "Read the error above, fix the cause, then retry the operation."
