"""Shared fixtures: staff personas (one per role) and small builders of tenants and stacks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User

from cfadmin.roles import ADMIN, OPERATOR, SUPPORT, VIEWER
from stacks.models import Stack, StackDomain, StackSecret
from tenants.models import Tenant

PASSWORD = "correct-horse-battery-staple"


def _persona(role: str) -> User:
    user = User.objects.create_user(username=role, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def viewer(db) -> User:
    return _persona(VIEWER)


@pytest.fixture
def support(db) -> User:
    return _persona(SUPPORT)


@pytest.fixture
def operator(db) -> User:
    return _persona(OPERATOR)


@pytest.fixture
def admin_role(db) -> User:
    """A member of the admin group (not a superuser)."""
    return _persona(ADMIN)


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser(username="root", password=PASSWORD, email="")


@pytest.fixture
def make_tenant(db) -> Callable[..., Tenant]:
    def make(slug: str = "customer-123", **fields) -> Tenant:
        fields.setdefault("name", f"Customer {slug}")
        return Tenant.objects.create(slug=slug, **fields)

    return make


@pytest.fixture
def make_stack(db, make_tenant) -> Callable[..., Stack]:
    def make(
        tenant: Tenant | str = "customer-123",
        stack_name: str | None = None,
        *,
        domains: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        **fields,
    ) -> Stack:
        if isinstance(tenant, str):
            tenant = Tenant.objects.filter(slug=tenant).first() or make_tenant(tenant)
        stack_name = stack_name or f"{tenant.slug}-main"  # the runbook's naming
        fields.setdefault("project_name", f"{tenant.slug}-project")
        fields.setdefault("template_name", "openclaw-agent")
        stack = Stack.objects.create(tenant=tenant, stack_name=stack_name, **fields)
        for service, domain in (domains or {}).items():
            StackDomain.objects.create(stack=stack, service=service, domain=domain)
        for key, value in (secrets or {}).items():
            secret = StackSecret(stack=stack, key=key)
            secret.set_value(value)
            secret.save()
        return stack

    return make
