"""Admin forms for stacks: template choice from the catalog, write-only secrets."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from cfadmin import encryption
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


class TenantChoiceField(forms.ModelChoiceField):
    """A tenant picked by search (the admin's autocomplete, which answers with tenant ids);
    links that name the tenant by slug (`?tenant=customer-123`) are understood too."""

    default_error_messages = {
        "invalid_choice": "No such tenant: pick one from the list (create the tenant first).",
        "required": "Choose the tenant the stack is for.",
    }

    def __init__(self, *, admin_site: Any = None, **kwargs: Any) -> None:
        widget = AutocompleteSelect(Stack._meta.get_field("tenant"), admin_site or admin.site)
        super().__init__(queryset=Tenant.objects.all(), widget=widget, **kwargs)

    def to_python(self, value: Any) -> Tenant | None:
        if isinstance(value, Tenant) or value in self.empty_values:
            return super().to_python(value)
        text = str(value).strip()
        # The autocomplete's id first; a slug made of digits only is reached through its id.
        tenant = Tenant.objects.filter(pk=int(text)).first() if _is_id(text) else None
        tenant = tenant or Tenant.objects.filter(slug=text).first()
        if tenant is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return tenant

    def prepare_value(self, value: Any) -> Any:
        # The widget selects by id: a slug (from a link, or a form shown again) becomes its id.
        if isinstance(value, str) and value.strip() and not _is_id(value.strip()):
            tenant = Tenant.objects.filter(slug=value.strip()).first()
            return tenant.pk if tenant else ""
        return super().prepare_value(value)


def _is_id(text: str) -> bool:
    """Digits that fit a bigint id (a longer number would overflow the lookup)."""
    return text.isdigit() and len(text) <= 18


class SecretField(forms.CharField):
    """A write-only value. One kept from an earlier attempt of the same form (stacks.previews,
    encrypted server-side) is used when the box is left empty; typing replaces it. The value
    itself is never rendered: only `kept_mask` (e.g. `sk-…f3a9`) beside the box."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault(
            "widget",
            forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        )
        super().__init__(**kwargs)
        self.kept = ""

    @property
    def kept_mask(self) -> str:
        return encryption.mask(self.kept) if self.kept else ""

    def clean(self, value: Any) -> str:
        return super().clean(value) or self.kept

    def has_changed(self, initial: Any, data: Any) -> bool:
        # A kept value left in place is a change to save (an inline row saves changed rows).
        return bool(self.kept) or super().has_changed(initial, data)


class KeptPasswordInput(forms.PasswordInput):
    """A password box that says beside it, by its mask only, that a value is kept: for rows of
    a table (an inline), where no form_row.html draws the marker. `kept_mask` is set by the
    form (StackSecretForm.mark_kept)."""

    kept_mask = ""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={"autocomplete": "new-password", **(attrs or {})})

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> str:
        if not self.kept_mask:
            return super().render(name, value, attrs, renderer)
        marker_id = f"{(attrs or {}).get('id', name)}_kept"
        # A screen reader hears the marker with the box (a table row has no help line).
        attrs = {**(attrs or {}), "aria-describedby": marker_id}
        box = super().render(name, value, attrs, renderer)
        return format_html(
            '{} <span class="cf-kept" id="{}" title="Kept encrypted on the server, not in this '
            'page: leave the box empty to keep it, or type a new value to replace it.">'
            "✓ kept <code>{}</code></span>",
            box,
            marker_id,
            self.kept_mask,
        )


class KeepsSecretsMixin:
    """For forms with SecretFields named `<prefix><key>`: which values to keep when the form is
    shown again, and marking the fields whose value is kept."""

    secret_prefix = ""
    fields: dict[str, forms.Field]
    cleaned_data: dict[str, Any]

    def secret_names(self) -> dict[str, str]:
        """Env key → the name of its field (`<prefix><key>`; a form of one row says otherwise)."""
        return {
            name.removeprefix(self.secret_prefix): name
            for name, field in self.fields.items()
            if isinstance(field, SecretField) and name.startswith(self.secret_prefix)
        }

    def secret_fields(self) -> dict[str, SecretField]:
        """Env key → its field."""
        return {key: self.fields[name] for key, name in self.secret_names().items()}

    def mark_kept(self, values: dict[str, str]) -> None:
        for key, field in self.secret_fields().items():
            field.kept = values.get(key, "")

    def secrets_to_keep(self) -> dict[str, str]:
        """A valid value typed now, else the one kept before (an invalid one is not kept)."""
        cleaned = getattr(self, "cleaned_data", {})
        keep = {}
        for key, name in self.secret_names().items():
            value = cleaned.get(name) or self.fields[name].kept
            if value:
                keep[key] = value
        return keep


class StackSecretForm(KeepsSecretsMixin, forms.ModelForm):
    """One row of the stack's secrets. The value is write-only: never rendered back; blank
    keeps the stored value, or the value kept from a failed save of the page (keyed by the
    row's key: StackSecretFormSet)."""

    value = SecretField(
        widget=KeptPasswordInput(),
        help_text="Write-only. Leave blank to keep the current value.",
    )

    class Meta:
        model = StackSecret
        fields = ["key"]

    def row_key(self) -> str:
        """The env key this row is for: as posted (a failed save shows it again), else stored."""
        if self.is_bound:
            return str(self.data.get(self.add_prefix("key"), "")).strip()
        return self.instance.key or ""

    def secret_names(self) -> dict[str, str]:
        key = self.row_key()
        # Without change permission the admin leaves the value out: nothing to keep.
        return {key: "value"} if key and "value" in self.fields else {}

    def mark_kept(self, values: dict[str, str]) -> None:
        super().mark_kept(values)
        if "value" in self.fields:
            field = self.fields["value"]
            field.widget.kept_mask = field.kept_mask

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


class StackSecretFormSet(forms.BaseInlineFormSet):
    """The stack's secrets inline. `kept` (env key → value, from stacks.previews under
    `kept_token`) fills the rows whose box was left empty after a failed save of the page."""

    def __init__(
        self, *args: Any, kept: dict[str, str] | None = None, kept_token: str = "", **kwargs: Any
    ) -> None:
        self.kept = kept or {}
        self.kept_token = kept_token
        super().__init__(*args, **kwargs)

    def _construct_form(self, i: int, **kwargs: Any) -> StackSecretForm:
        form = super()._construct_form(i, **kwargs)
        form.mark_kept(self.kept)
        return form

    def secrets_to_keep(self) -> dict[str, str]:
        """Env key → the valid value typed (or kept) in its row; rows being deleted keep none."""
        keep: dict[str, str] = {}
        for form in self.forms:
            if not (self.can_delete and self._should_delete_form(form)):
                keep.update(form.secrets_to_keep())
        return keep

    def mark_kept(self, values: dict[str, str]) -> None:
        self.kept = values
        for form in self.forms:
            form.mark_kept(values)


class DeployStartForm(forms.Form):
    """Step 1 of the deploy page: the tenant (searched, checked here) and the template."""

    tenant = TenantChoiceField(help_text="Type part of the tenant's slug, name or contact.")
    template = forms.ChoiceField(
        choices=_template_choices,
        error_messages={"required": "Choose the template to deploy."},
    )


class DeployForm(KeepsSecretsMixin, forms.Form):
    """The runbook's deploy flags as a form; the template decides the domain and env fields."""

    secret_prefix = "env_"

    tenant = TenantChoiceField(help_text="Type part of the tenant's slug, name or contact.")
    project_name = forms.CharField(max_length=100, help_text="e.g. customer-123-project")
    template = forms.ChoiceField(choices=_template_choices)
    stack_name = forms.CharField(max_length=63, help_text="DNS label, e.g. customer-123-main")

    def __init__(
        self,
        *args: Any,
        manifest: Manifest | None = None,
        kept: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.manifest = manifest
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
            self.fields[f"env_{key}"] = SecretField(
                label=key,
                help_text=("Required. " if key in manifest.required_env else "Optional. ")
                + "Write-only: never shown again after the preview.",
            )
        self.mark_kept(kept or {})

    @staticmethod
    def field_for(error_field: str) -> str:
        """The form field a plan error belongs to (`domain.webui` → `domain_webui`)."""
        if error_field == "template":
            return "template"
        return error_field.replace(".", "_", 1)

    @staticmethod
    def data_from(request: DeployRequest) -> dict[str, str]:
        """The form's data for a request (a refused deploy shown again); env values stay out:
        they are kept server-side."""
        data = {
            "tenant": request.tenant,
            "project_name": request.project_name,
            "template": request.template,
            "stack_name": request.stack_name,
        }
        for service, host in request.domains:
            key = f"domain_{service}"
            data[key] = f"{data[key]}, {host}" if key in data else host
        return data

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


class RotateSecretsForm(KeepsSecretsMixin, forms.Form):
    """New values for some of a stack's env keys; blank keeps a key as it is."""

    def __init__(
        self, *args: Any, stack: Stack, kept: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.stack = stack
        current = dict(stack.secrets.values_list("key", "masked_value"))
        for key in load_manifest(stack.template_name).env_keys:
            self.fields[key] = SecretField(
                label=key,
                validators=[validate_env_value],
                help_text=f"Now: {current[key]}" if key in current else "Not set yet.",
            )
        self.mark_kept(kept or {})

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.errors and not any(cleaned.values()):
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
