"""Secrets posted to the admin never reach an error report: every view that takes one is marked
with sensitive_post_parameters, so Django's SafeExceptionReporterFilter (what the 500 e-mail and
the debug page use) shows stars instead of the value."""

from __future__ import annotations

import sys

import pytest
from django.urls import reverse
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from stacks.choices import StackStatus

pytestmark = pytest.mark.django_db

SECRET = "sk-test-sensitive-" + "Qw3Er4Ty5Ui6" * 2
STARS = SafeExceptionReporterFilter.cleansed_substitute


def error_report(request) -> str:
    """The text of the error report Django would send for an exception in this request."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return ExceptionReporter(request, *sys.exc_info()).get_traceback_text()


def assert_hidden(response, field: str) -> None:
    request = response.wsgi_request
    assert request.POST[field] == SECRET  # it was posted ...
    assert SafeExceptionReporterFilter().get_post_parameters(request)[field] == STARS
    report = error_report(request)
    assert SECRET not in report  # ... and no report shows it
    assert STARS in report


def test_the_deploy_page_hides_the_env_values(client, operator, make_tenant):
    make_tenant("customer-123")
    client.force_login(operator)

    response = client.post(
        reverse("admin:stacks_stack_deploy"),
        {
            "tenant": "customer-123",
            "project_name": "customer-123-project",
            "template": "openclaw-agent",
            "stack_name": "customer-123-main",
            "env_ANTHROPIC_API_KEY": SECRET,
            "_preview": "Preview (dry-run)",
        },
    )

    assert response.status_code == 200
    assert_hidden(response, "env_ANTHROPIC_API_KEY")


def test_rotating_secrets_hides_the_new_values(client, operator, make_stack):
    stack = make_stack(status=StackStatus.RUNNING, secrets={"ANTHROPIC_API_KEY": "sk-old-value"})
    client.force_login(operator)

    response = client.post(
        reverse("admin:stacks_stack_changelist"),
        {
            "action": "rotate_secrets",
            "_selected_action": [stack.pk],
            "index": "0",
            "post": "yes",
            "ANTHROPIC_API_KEY": SECRET,
        },
    )

    assert response.status_code == 302  # queued
    assert_hidden(response, "ANTHROPIC_API_KEY")


def test_the_stack_form_hides_the_secrets_inline(client, operator, make_stack):
    stack = make_stack(status=StackStatus.RUNNING)
    client.force_login(operator)

    response = client.post(
        reverse("admin:stacks_stack_change", args=[stack.pk]),
        {"secrets-0-key": "ANTHROPIC_API_KEY", "secrets-0-value": SECRET},
    )

    assert response.status_code == 200  # the incomplete form is shown again
    assert_hidden(response, "secrets-0-value")


def test_a_view_without_secrets_keeps_its_post_data_readable(client, operator):
    """The control: the filter hides only what a view marked, so the tests above can fail."""
    client.force_login(operator)

    response = client.post(reverse("admin:tenants_tenant_add"), {"name": SECRET})

    assert SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)["name"] == (
        SECRET
    )
