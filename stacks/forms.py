"""Admin forms for stacks: template choice from the catalog, write-only secrets."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from cfadmin.validators import normalize_domain, validate_env_value
from stacks.catalog import template_names
from stacks.models import Stack, StackSecret


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
