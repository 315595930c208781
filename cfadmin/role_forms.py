"""The user forms' "Role" field: one choice that sets the user's role group (cfadmin.roles), in
place of the generic groups widget, on the add page and on the change page alike."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group

from cfadmin import roles

# The choice that removes every role group (a post without the field keeps the role).
NO_ROLE = "none"
ROLE_HELP = (
    " ".join(f"{role.capitalize()}: {roles.ROLE_SUMMARIES[role]}." for role in roles.ROLES)
    + " A role gives access to the console (staff status); to shut someone out, choose "
    "“No role” or untick “Active”."
)


def role_choices() -> list[tuple[str, str]]:
    # Short labels (they fit a phone's select); what each role may do is the help text.
    return [(NO_ROLE, "No role"), *((role, role.capitalize()) for role in roles.ROLES)]


class RoleFieldMixin(forms.ModelForm):
    """Adds `role`, shows the user's highest role group as its value, and leaves the role
    groups out of `groups` (which keeps any other group)."""

    role = forms.ChoiceField(
        label="Role", choices=role_choices, required=False, help_text=ROLE_HELP
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "role" in self.fields:
            held = roles.role_names(self.instance.groups.values_list("name", flat=True))
            self.fields["role"].initial = held[-1] if held else NO_ROLE
        groups = self.fields.get("groups")
        if groups is not None:
            groups.queryset = Group.objects.exclude(name__in=roles.ROLES)
            groups.label = "Other groups"
            groups.help_text = "Groups that are not roles (roles are set above)."

    def clean_role(self) -> str:
        # Left out of a post (a script, not the page): the role the user has now.
        return self.cleaned_data.get("role") or self.fields["role"].initial or NO_ROLE

    def chosen_role(self) -> str:
        """The role group the user is to have ("" for none)."""
        value = self.cleaned_data.get("role", NO_ROLE)
        return "" if value == NO_ROLE else value


class RoleUserChangeForm(RoleFieldMixin, UserChangeForm):
    pass


class RoleUserCreationForm(RoleFieldMixin, AdminUserCreationForm):
    pass
