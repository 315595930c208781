"""The admin of cfadmin itself: the site's branding, the shared admin bases every app builds
on (base), the audit trail (audit_trail), staff users, groups and lockouts (users) and Django Q
under Internals."""

from django.contrib import admin

from cfadmin import internals
from cfadmin.admin import audit_trail, users  # noqa: F401  (they register their pages)
from cfadmin.admin.base import (
    AuditedModelAdmin,
    LeanListMixin,
    PrefilledAutocompleteSelectMultiple,
    ReadOnlyAdmin,
    TextInputFilter,
    prefill_autocomplete,
)

__all__ = [
    "AuditedModelAdmin",
    "LeanListMixin",
    "PrefilledAutocompleteSelectMultiple",
    "ReadOnlyAdmin",
    "TextInputFilter",
    "prefill_autocomplete",
]

admin.site.site_header = "cfadmin"
admin.site.site_title = "cfadmin"
admin.site.index_title = "CloudFreedom Agent Platform — operator console"

# Django Q's pages: the admin role's "Internals", last on the index (cfadmin/internals.py).
internals.register(admin.site)
internals.list_internals_last(admin.site)
