"""The second factor's pages: enrol (QR code, key, first code, recovery codes) and verify.

Thin: the rules and every write are in mfa.py. Pages are never cached: the enrolment page shows
the TOTP key, the page after it the recovery codes, each once.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from cfadmin.security import mfa

LOGIN_URL = reverse_lazy("admin:login")


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "size": 12}
        ),
    )


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("admin:index")


def _page(request: HttpRequest, template: str, title: str, **context: Any) -> HttpResponse:
    return TemplateResponse(
        request,
        template,
        {
            **admin.site.each_context(request),
            # The sidebar's links would only lead back here until the factor is given.
            "is_nav_sidebar_enabled": False,
            "title": title,
            "next": _next_url(request),
            **context,
        },
    )


@sensitive_post_parameters("code")
@never_cache
@login_required(login_url=LOGIN_URL)
def enrol(request: HttpRequest) -> HttpResponse:
    user = request.user
    if mfa.has_second_factor(user):
        if not user.is_verified():
            return redirect(f"{reverse('cfadmin_mfa_verify')}?{request.GET.urlencode()}")
        return _page(request, "admin/mfa/enrolled.html", "Two-factor authentication")
    device = mfa.enrolment_device(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = mfa.confirm_enrolment(user, device, form.cleaned_data["code"])
        if codes is not None:
            otp_login(request, TOTPDevice.objects.get(pk=device.pk))
            return _page(
                request, "admin/mfa/recovery_codes.html", "Your recovery codes", codes=codes
            )
        form.add_error(
            "code",
            "That code is not right. Check that the phone's clock is set automatically, "
            "and type the 6 digits the app shows now.",
        )
    return _page(
        request,
        "admin/mfa/enrol.html",
        "Set up two-factor authentication",
        form=form,
        qr_svg=mfa.qr_svg(device),
        manual_key=mfa.manual_key(device),
        required=mfa.mfa_required(user),
    )


@sensitive_post_parameters("code")
@never_cache
@login_required(login_url=LOGIN_URL)
def verify(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not mfa.has_second_factor(user):
        return redirect(f"{reverse('cfadmin_mfa_enrol')}?{request.GET.urlencode()}")
    if user.is_verified():
        return HttpResponseRedirect(_next_url(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = mfa.verify(user, form.cleaned_data["code"])
        if result.device is not None:
            otp_login(request, result.device)
            if result.recovery_codes_left is not None:
                messages.warning(
                    request,
                    f"You used a recovery code; {result.recovery_codes_left} left. If your "
                    "phone is lost, ask an admin to reset your second factor and enrol again.",
                )
            return HttpResponseRedirect(_next_url(request))
        form.add_error("code", result.error)
    return _page(request, "admin/mfa/verify.html", "Two-factor authentication", form=form)
