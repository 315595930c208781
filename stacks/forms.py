"""Admin forms for stacks: template choice from the catalog, write-only secrets."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from cfadmin.validators import normalize_domain, validate_env_value
from stacks.catalog import template_names
from stacks.compose import Manifest, load_manifest
from stacks.models import Stack, StackSecret
from stacks.plan import DeployRequest
from tenants.models import Tenant


def _template_choices() -> list[tuple[str, str]]:
    return [("", "---------"), *((name, name) for name in template_names())]


class StackForm(forms.ModelForm):
    template_name = forms.ChoiceField(choices=_template_choices, label="Template")

    class Meta:
        model = Stack
        fields = ["tenant", "project_name", "stack_name", "template_name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tenant = self.fields.get("tenant")
        if tenant is not None:
            # No "delete tenant" or "edit tenant" shortcuts beside a stack's tenant picker.
            for flag in ("can_delete_related", "can_change_related"):
                setattr(tenant.widget, flag, False)


class StackSecretForm(forms.ModelForm):
    """The value is write-only: never rendered back; blank keeps the stored value."""

    value = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the current value.",
    )

    class Meta:
        model = StackSecret
        fields = ["key"]

    def clean_value(self) -> str:
        value = self.cleaned_data.get("value", "")
        if value:
            validate_env_value(value)
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.instance.pk and cleaned.get("key") and not cleaned.get("value"):
            self.add_error("value", "Enter a value for a new secret.")
        return cleaned

    def save(self, commit: bool = True) -> StackSecret:
        value = self.cleaned_data.get("value")
        if value:
            self.instance.set_value(value)
        return super().save(commit=commit)


class StackDomainFormSet(forms.BaseInlineFormSet):
    """The same domain twice in one stack is refused here; across stacks, by the model."""

    def clean(self) -> None:
        super().clean()
        seen: dict[str, int] = {}
        for index, form in enumerate(self.forms):
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            domain = form.cleaned_data.get("domain")
            if not domain:
                continue
            try:
                domain = normalize_domain(domain)
            except ValidationError:
                continue  # the field's own error is already shown
            if domain in seen:
                form.add_error("domain", f"{domain} is listed twice for this stack.")
            seen[domain] = index


class DeployForm(forms.Form):
    """The runbook's deploy flags as a form; the template decides the domain and env fields."""

    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.all(),
        to_field_name="slug",
        widget=forms.TextInput(attrs={"placeholder": "customer-123"}),  # usable at 1,000 tenants
        help_text="The tenant's slug.",
        error_messages={"invalid_choice": "No tenant with this slug: create the tenant first."},
    )
    project_name = forms.CharField(max_length=100, help_text="e.g. customer-123-project")
    template = forms.ChoiceField(choices=_template_choices)
    stack_name = forms.CharField(max_length=63, help_text="DNS label, e.g. customer-123-main")

    def __init__(self, *args: Any, manifest: Manifest | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manifest = manifest
        self.fields["tenant"].widget.attrs["autofocus"] = True
        if manifest is None:
            return
        for service, port in manifest.exposed.items():
            self.fields[f"domain_{service}"] = forms.CharField(
                required=False,
                label=f"Domain for {service}",
                help_text=f"Host name only, served by {service} on container port {port}, "
                "e.g. demo.customer123.com. Several: separate with commas.",
            )
        for key in manifest.env_keys:
            self.fields[f"env_{key}"] = forms.CharField(
                required=False,
                strip=False,
                label=key,
                widget=forms.PasswordInput(
                    render_value=False, attrs={"autocomplete": "new-password"}
                ),
                help_text=("Required. " if key in manifest.required_env else "Optional. ")
                + "Write-only: never shown again after the preview.",
            )

    @staticmethod
    def field_for(error_field: str) -> str:
        """The form field a plan error belongs to (`domain.webui` → `domain_webui`)."""
        if error_field == "template":
            return "template"
        return error_field.replace(".", "_", 1)

    def to_request(self) -> DeployRequest:
        data = self.cleaned_data
        assert self.manifest is not None
        domains = [
            (service, host.strip())
            for service in self.manifest.exposed
            for host in (data.get(f"domain_{service}") or "").split(",")
            if host.strip()
        ]
        env = {key: data[f"env_{key}"] for key in self.manifest.env_keys if data.get(f"env_{key}")}
        return DeployRequest(
            tenant=data["tenant"].slug,
            project_name=data["project_name"],
            template=data["template"],
            stack_name=data["stack_name"].strip(),
            domains=domains,
            env=env,
        )


class RotateSecretsForm(forms.Form):
    """New values for some of a stack's env keys; blank keeps a key as it is."""

    def __init__(self, *args: Any, stack: Stack, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stack = stack
        current = dict(stack.secrets.values_list("key", "masked_value"))
        for key in load_manifest(stack.template_name).env_keys:
            self.fields[key] = forms.CharField(
                required=False,
                strip=False,
                label=key,
                widget=forms.PasswordInput(
                    render_value=False, attrs={"autocomplete": "new-password"}
                ),
                help_text=f"Now: {current[key]}" if key in current else "Not set yet.",
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for key, value in cleaned.items():
            if value:
                try:
                    validate_env_value(value)
                except ValidationError as error:
                    self.add_error(key, error)
        if not any(cleaned.values()):
            raise ValidationError("Enter a new value for at least one key.")
        return cleaned

    def new_values(self) -> dict[str, str]:
        return {key: value for key, value in self.cleaned_data.items() if value}


class CancelOperationForm(forms.Form):
    """Why a queued operation is cancelled: required, it goes into the audit trail."""

    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Kept in the audit trail with your name.",
    )
