"""Secrets at rest: encrypted with MultiFernet, rotatable, only ever shown masked."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from cfadmin import encryption
from cfadmin.encryption import MASK, InvalidToken
from cfadmin.models import AuditAction, AuditEvent
from stacks.models import StackSecret

API_KEY = "sk-test-api03-Zx8Qw2Lm5Np7Rt9Vb1Cd3Ef5Gh7f3a9"


def new_key() -> str:
    return Fernet.generate_key().decode()


# --------------------------------------------------------------------------------------------
# round trip


@pytest.mark.parametrize("plaintext", [API_KEY, "", "ünïcødé ✓ 🔑", "a\nb\tc", "x" * 32768])
def test_it_decrypts_what_it_encrypted(plaintext):
    token = encryption.encrypt(plaintext)
    assert token != plaintext
    assert encryption.decrypt(token) == plaintext


def test_encrypting_twice_gives_different_tokens():
    assert encryption.encrypt(API_KEY) != encryption.encrypt(API_KEY)


def test_a_stored_secret_holds_ciphertext_not_the_value(make_stack):
    stack = make_stack(secrets={"ANTHROPIC_API_KEY": API_KEY})
    stored = StackSecret.objects.get(stack=stack)
    assert stored.value_encrypted != API_KEY
    assert API_KEY not in stored.value_encrypted
    assert "Zx8Qw2Lm5Np7" not in stored.value_encrypted
    assert stored.reveal() == API_KEY
    # the column itself, read without the model, holds no plaintext either
    raw = StackSecret.objects.filter(pk=stored.pk).values_list("value_encrypted", flat=True)[0]
    assert API_KEY not in raw
    assert encryption.decrypt(raw) == API_KEY


def test_a_token_from_an_unknown_key_raises_invalid_token(make_stack):
    foreign = Fernet(new_key()).encrypt(API_KEY.encode()).decode()
    with pytest.raises(InvalidToken):
        encryption.decrypt(foreign)
    stack = make_stack()
    secret = StackSecret.objects.create(
        stack=stack, key="API_KEY", value_encrypted=foreign, masked_value="x"
    )
    with pytest.raises(InvalidToken):
        secret.reveal()


def test_a_tampered_token_raises_invalid_token():
    token = encryption.encrypt(API_KEY)
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(InvalidToken):
        encryption.decrypt(tampered)


# --------------------------------------------------------------------------------------------
# key rotation


def test_rotation_re_encrypts_old_secrets_under_the_new_key(settings, make_stack):
    old, new = new_key(), new_key()
    settings.SECRETS_ENCRYPTION_KEYS = [old]
    make_stack("customer-123", "main", secrets={"ANTHROPIC_API_KEY": API_KEY, "TOKEN": "t" * 20})
    make_stack("customer-456", "other", secrets={"ANTHROPIC_API_KEY": "other-value-0123456789"})
    tokens_before = dict(StackSecret.objects.values_list("pk", "value_encrypted"))

    settings.SECRETS_ENCRYPTION_KEYS = [new]
    with pytest.raises(InvalidToken):  # control: the new key alone cannot read them yet
        StackSecret.objects.first().reveal()

    settings.SECRETS_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_secret_keys")

    settings.SECRETS_ENCRYPTION_KEYS = [new]
    values = {(s.stack.tenant.slug, s.key): s.reveal() for s in StackSecret.objects.all()}
    assert values == {
        ("customer-123", "ANTHROPIC_API_KEY"): API_KEY,
        ("customer-123", "TOKEN"): "t" * 20,
        ("customer-456", "ANTHROPIC_API_KEY"): "other-value-0123456789",
    }
    tokens_after = dict(StackSecret.objects.values_list("pk", "value_encrypted"))
    assert all(tokens_after[pk] != tokens_before[pk] for pk in tokens_before)
    settings.SECRETS_ENCRYPTION_KEYS = [old]
    with pytest.raises(InvalidToken):  # the old key no longer opens them
        StackSecret.objects.first().reveal()


def test_rotation_writes_an_audit_event_and_touches_only_old_tokens(settings, make_stack):
    old, new = new_key(), new_key()
    settings.SECRETS_ENCRYPTION_KEYS = [old]
    make_stack("customer-123", "main", secrets={"A_KEY": "a" * 20, "B_KEY": "b" * 20})
    settings.SECRETS_ENCRYPTION_KEYS = [new, old]
    already_new = StackSecret.objects.get(key="B_KEY")
    already_new.set_value("b" * 20)  # now under the new key
    already_new.save()
    untouched_token = already_new.value_encrypted

    call_command("rotate_secret_keys")

    event = AuditEvent.objects.get(action=AuditAction.SECRETS_ROTATED)
    assert event.actor_repr == "cli"
    assert "1 of 2" in event.message
    assert StackSecret.objects.get(key="B_KEY").value_encrypted == untouched_token
    assert "a" * 20 not in json.dumps(event.changes) + event.message

    call_command("rotate_secret_keys")  # nothing left to do
    events = AuditEvent.objects.filter(action=AuditAction.SECRETS_ROTATED)
    assert events.count() == 2
    assert "0 of 2" in events.first().message


def test_needs_rotation_is_true_only_for_tokens_the_first_key_cannot_open(settings):
    old, new = new_key(), new_key()
    settings.SECRETS_ENCRYPTION_KEYS = [old]
    old_token = encryption.encrypt(API_KEY)
    settings.SECRETS_ENCRYPTION_KEYS = [new, old]
    new_token = encryption.encrypt(API_KEY)
    assert encryption.needs_rotation(old_token) is True
    assert encryption.needs_rotation(new_token) is False
    assert encryption.decrypt(old_token) == encryption.decrypt(new_token) == API_KEY


# --------------------------------------------------------------------------------------------
# the mask and other places a value could leak


@pytest.mark.parametrize(
    ("plaintext", "masked"),
    [
        ("sk-test-api03-0123456789f3a9", "sk-…f3a9"),
        (API_KEY, "sk-…f3a9"),
        ("0123456789abcdef", "012…cdef"),  # 16: long enough to reveal the ends
        ("0123456789abcde", MASK),  # 15
        ("short", MASK),
        ("", MASK),
    ],
)
def test_mask_shows_first_three_and_last_four_of_long_values_only(plaintext, masked):
    assert encryption.mask(plaintext) == masked


def test_mask_is_the_four_dots():
    assert MASK == "••••"


def test_a_secret_stores_its_mask_and_its_str_never_contains_the_value(make_stack):
    stack = make_stack(secrets={"ANTHROPIC_API_KEY": API_KEY, "PIN": "1234"})
    long_one = StackSecret.objects.get(stack=stack, key="ANTHROPIC_API_KEY")
    short_one = StackSecret.objects.get(stack=stack, key="PIN")
    assert long_one.masked_value == "sk-…f3a9"
    assert short_one.masked_value == MASK
    for secret, value in ((long_one, API_KEY), (short_one, "1234")):
        assert value not in str(secret)
        assert value not in repr(secret)
        assert str(secret) == secret.key


def test_the_admin_never_shows_or_logs_a_secret_value(client, superuser, make_stack):
    stack = make_stack("customer-123", "customer-123-main")  # made by a deploy; edited here
    client.force_login(superuser)
    response = client.post(
        f"/admin/stacks/stack/{stack.pk}/change/",
        {
            "domains-TOTAL_FORMS": "0",
            "domains-INITIAL_FORMS": "0",
            "secrets-TOTAL_FORMS": "1",
            "secrets-INITIAL_FORMS": "0",
            "secrets-0-key": "ANTHROPIC_API_KEY",
            "secrets-0-value": API_KEY,
            "operations-TOTAL_FORMS": "0",
            "operations-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    secret = StackSecret.objects.get(key="ANTHROPIC_API_KEY")
    assert secret.reveal() == API_KEY

    page = client.get(f"/admin/stacks/stack/{secret.stack_id}/change/").content.decode()
    assert API_KEY not in page
    assert secret.value_encrypted not in page
    assert "sk-…f3a9" in page

    trail = json.dumps(list(AuditEvent.objects.values()), default=str) + json.dumps(
        list(LogEntry.objects.values_list("change_message", "object_repr"))
    )
    assert AuditEvent.objects.filter(action=AuditAction.UPDATE).exists()  # the secret added
    assert API_KEY not in trail
    assert secret.value_encrypted not in trail


# --------------------------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(["not-a-fernet-key"], id="malformed-first"),
        pytest.param([Fernet.generate_key().decode(), "dG9vLXNob3J0"], id="malformed-second"),
        pytest.param([Fernet.generate_key().decode()[:-2]], id="truncated"),
    ],
)
def test_a_malformed_key_is_improperly_configured_naming_the_setting(settings, keys):
    settings.SECRETS_ENCRYPTION_KEYS = keys
    with pytest.raises(ImproperlyConfigured, match="SECRETS_ENCRYPTION_KEYS"):
        encryption.encrypt(API_KEY)
    with pytest.raises(ImproperlyConfigured, match="SECRETS_ENCRYPTION_KEYS"):
        encryption.decrypt("gAAAA")


def test_the_error_for_a_malformed_key_does_not_echo_the_key(settings):
    bad = "this-is-a-secret-but-not-a-fernet-key"
    settings.SECRETS_ENCRYPTION_KEYS = [bad]
    with pytest.raises(ImproperlyConfigured) as caught:
        encryption.encrypt(API_KEY)
    assert bad not in str(caught.value)


def test_an_empty_key_list_is_improperly_configured(settings):
    settings.SECRETS_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="SECRETS_ENCRYPTION_KEYS"):
        encryption.encrypt(API_KEY)
