"""Notifications in the admin: channels (URL write-only, shown masked, "Send test"), the
channels inline of an escalation contact, and the read-only Notifications page with "retry
now". The rules of sending live in ops.notifications (channels, delivery)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from cfadmin.admin import AuditedModelAdmin, LeanListMixin, ReadOnlyAdmin
from cfadmin.encryption import MASK
from cfadmin.list_filters import RecentDateFilter
from cfadmin.paginators import EstimatedCountPaginator
from ops.models.notifications import DeliveryStatus, Notification, NotificationChannel
from ops.notifications import channels, delivery
from ops.permissions import CHANGE_NOTIFICATION, may

URL_HELP = (
    "Write-only. An e-mail address, or an apprise URL: json://host/path (webhook), "
    "slack://…, mmost://…, workflows://… (Teams), discord://…, tgram://…, ntfy://…, "
    "mailto://…. It holds the service's token: stored encrypted, never shown again."
)
URL_HELP_CHANGE = URL_HELP + " Leave blank to keep the stored one."


class ChannelForm(forms.ModelForm):
    """A channel; its URL is write-only (never rendered back, not even after an error) and
    required only when the channel is new."""

    url = forms.CharField(
        label="URL or e-mail address",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=URL_HELP,
    )

    class Meta:
        model = NotificationChannel
        fields = ["contact", "user", "label", "url", "enabled", "position"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["url"].help_text = URL_HELP_CHANGE
        if "user" in self.fields:
            self.fields["user"].queryset = get_user_model().objects.filter(is_staff=True)

    def clean_url(self) -> str:
        value = self.cleaned_data.get("url", "")
        if not value:
            if not self.instance.pk:
                raise ValidationError(
                    "Enter the channel's URL or e-mail address (required for a new channel)."
                )
            return ""
        try:
            channels.kind_of(value)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["url"]) from None
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        both_shown = "contact" in self.fields and "user" in self.fields
        if both_shown and bool(cleaned.get("contact")) == bool(cleaned.get("user")):
            raise ValidationError(
                "Choose either an escalation contact or a staff user: a channel has "
                "exactly one owner."
            )
        return cleaned

    def save(self, commit: bool = True) -> NotificationChannel:
        if self.cleaned_data.get("url"):
            channels.set_url(self.instance, self.cleaned_data["url"])
        return super().save(commit=commit)


class ContactChannelForm(ChannelForm):
    """A channel on its contact's page: the contact is the owner."""

    class Meta(ChannelForm.Meta):
        fields = ["label", "url", "enabled", "position"]


def last_test(channel: NotificationChannel) -> str:
    if channel.last_test_at is None:
        return "never"
    outcome = "ok" if channel.last_test_ok else "failed"
    when = f"{channel.last_test_at:%Y-%m-%d %H:%M}"
    return format_html("{} ({}): {}", outcome, when, channel.last_test_message)


class ChannelOwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("contact", "escalation contact"), ("user", "staff user")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "contact":
            return queryset.filter(contact__isnull=False)
        if self.value() == "user":
            return queryset.filter(user__isnull=False)
        return queryset


class SecretMaskingMixin:
    """The audit trail keeps no ciphertext of a channel URL either."""

    def audit_snapshot(self, obj: Any) -> dict[str, Any]:
        data = super().audit_snapshot(obj)  # type: ignore[misc]
        if "url_encrypted" in data:
            data["url_encrypted"] = MASK
        return data


@admin.register(NotificationChannel)
class NotificationChannelAdmin(SecretMaskingMixin, AuditedModelAdmin):
    form = ChannelForm
    change_form_template = "admin/ops/notificationchannel/change_form.html"
    list_display = (
        "__str__",
        "owner",
        "label",
        "kind",
        "enabled",
        "last_test_display",
        "consecutive_failures",
    )
    list_filter = (ChannelOwnerFilter, "kind", "enabled")
    list_select_related = ("contact", "user")
    search_fields = ("label", "url_hint", "contact__team", "user__username")
    readonly_fields = (
        "kind",
        "url_hint",
        "last_test_display",
        "consecutive_failures",
        "last_failure_at",
    )
    fields = (
        "contact",
        "user",
        "label",
        "url",
        "kind",
        "url_hint",
        "enabled",
        "position",
        "last_test_display",
        "consecutive_failures",
        "last_failure_at",
    )
    actions = ("send_test",)

    # The posted URL holds the token: error reports must not show it.
    @method_decorator(sensitive_post_parameters("url"))
    def changeform_view(self, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().changeform_view(*args, **kwargs)

    @admin.display(description="owner")
    def owner(self, obj: NotificationChannel) -> str:
        return obj.owner_repr

    @admin.display(description="last test")
    def last_test_display(self, obj: NotificationChannel) -> str:
        return last_test(obj)

    @admin.action(description="Send a test notification", permissions=["change"])
    def send_test(self, request: HttpRequest, queryset: Any) -> HttpResponseRedirect | None:
        sent = [delivery.send_test(channel) for channel in queryset.select_related("contact")]
        self.message_user(
            request,
            f"Queued a test to {len(sent)} channel(s); the outcome shows under 'last test' "
            "once the worker has sent it.",
            messages.SUCCESS,
        )
        back = request.POST.get("next", "")
        if len(sent) == 1 and back == "change":
            return HttpResponseRedirect(
                reverse("admin:ops_notificationchannel_change", args=[sent[0].channel_id])
            )
        return None


class NotificationChannelInline(admin.TabularInline):
    """The team's channels, managed where the contact is."""

    model = NotificationChannel
    fk_name = "contact"
    form = ContactChannelForm
    fields = ("label", "url", "kind", "url_hint", "enabled", "position", "last_test_display")
    readonly_fields = ("kind", "url_hint", "last_test_display")
    extra = 0
    show_change_link = True  # its page has "Send test"
    verbose_name = "notification channel"
    verbose_name_plural = "notification channels (URL write-only, shown masked)"

    @admin.display(description="last test")
    def last_test_display(self, obj: NotificationChannel) -> str:
        return last_test(obj)


@admin.register(Notification)
class NotificationAdmin(LeanListMixin, ReadOnlyAdmin):
    """Every message cfadmin sent or tried to: read-only; a failed one may be retried."""

    list_display = (
        "title",
        "event",
        "recipient_repr",
        "channel",
        "status",
        "attempts",
        "created_at",
        "sent_at",
        "last_error",
    )
    list_filter = ("status", "event", "channel", ("created_at", RecentDateFilter))
    search_fields = ("title",)
    list_select_related = ("channel",)
    list_defer = ("body",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ("retry_now",)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return may(request.user, CHANGE_NOTIFICATION)

    @admin.action(description="Retry now (failed ones)", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: Any) -> None:
        failed = queryset.select_related(None).filter(status=DeliveryStatus.FAILED).only("status")
        count = delivery.retry_now(list(failed[: delivery.RETRY_BATCH]))
        skipped = queryset.count() - count
        note = f", {skipped} skipped (not failed)" if skipped else ""
        self.message_user(request, f"Retrying {count} notification(s){note}.", messages.SUCCESS)
