"""Tenants: the customers whose stacks cfadmin runs."""

from django.apps import AppConfig

from cfadmin.roles import ADMIN, OPERATOR, VIEWER


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Customers"  # breadcrumbs: "Customers > Tenants", not "Tenants > Tenants"
    default_auto_field = "django.db.models.BigAutoField"
    role_permissions = {
        VIEWER: ["tenants.view_tenant"],
        OPERATOR: ["tenants.add_tenant", "tenants.change_tenant"],
        ADMIN: ["tenants.delete_tenant"],
    }
