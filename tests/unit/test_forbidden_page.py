"""The 403 page (cfadmin.permission_denied): the console's look, the role the page needs, the
person's roles, and a way back."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from cfadmin.roles import ADMIN, OPERATOR, SUPPORT
from tests.conftest import PASSWORD

DEPLOY = reverse("admin:stacks_stack_deploy")
HOME = reverse("admin:index")


def login(client: Client, user: User) -> Client:
    assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)
    return client


def text(response) -> str:
    """The page's visible words, tags dropped and spaces collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", "", response.content.decode(), flags=re.S)
    words = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))
    return re.sub(r" ([,.])", r"\1", words).strip()


def back_link(response) -> str:
    match = re.search(r'<a [^>]*id="cf-back-link"[^>]*href="([^"]*)"', response.content.decode())
    assert match is not None, "no back link"
    return unescape(match.group(1))


def test_a_viewer_opening_the_deploy_page_is_told_support_previews_it(client, viewer):
    response = login(client, viewer).get(DEPLOY)

    assert response.status_code == 403
    assert [t.name for t in response.templates][:2] == ["403.html", "admin/base_site.html"]
    words = text(response)
    assert f"This needs the {SUPPORT} role" in words
    assert "Signed in as viewer. Your role: viewer" in words
    # The console's look: its header, its stylesheets, the new page's own CSS.
    content = response.content.decode()
    assert 'id="header"' in content and "cfadmin/cfadmin.css" in content
    assert "cfadmin/admin_pages.css" in content
    assert "403 Forbidden" not in words


def test_support_posting_a_deploy_is_told_it_needs_operator(client, support):
    response = login(client, support).post(DEPLOY, {"_deploy": "1"})

    assert response.status_code == 403
    assert f"This needs the {OPERATOR} role" in text(response)


def test_a_model_page_names_the_role_of_its_permission(client, support, make_tenant):
    tenant = make_tenant()
    response = login(client, support).get(reverse("admin:tenants_tenant_delete", args=[tenant.pk]))

    assert response.status_code == 403
    assert f"This needs the {ADMIN} role" in text(response)


def test_the_back_link_returns_to_a_page_of_this_site(client, viewer):
    came_from = "http://testserver/admin/stacks/stack/?q=abc"
    response = login(client, viewer).get(DEPLOY, HTTP_REFERER=came_from)

    assert back_link(response) == came_from


@pytest.mark.parametrize(
    "referer",
    ["https://evil.example/phish", "", "http://testserver" + DEPLOY],
    ids=["another site", "none", "this page"],
)
def test_the_back_link_goes_home_otherwise(client, viewer, referer):
    response = login(client, viewer).get(DEPLOY, HTTP_REFERER=referer)

    assert back_link(response) == HOME


def test_the_page_has_no_inline_style_or_script(client, viewer):
    content = login(client, viewer).get(DEPLOY).content.decode()

    assert " style=" not in content
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", content)
    assert "<style" not in content


def test_a_user_without_a_role_is_told_so(client, db):
    nobody = User.objects.create_user(username="nobody", password=PASSWORD, is_staff=True)
    response = login(client, nobody).get(DEPLOY)

    assert response.status_code == 403
    words = text(response)
    assert f"This needs the {SUPPORT} role" in words
    assert "You have no role." in words
