"""`make run`'s closing box (cfadmin.management.startup_summary): ensure_admin hands a fresh
password to runlocal, which shows it once inside the box with the URL, the username and the
command that sets or resets the password, after everything else has started."""

from __future__ import annotations

import io
import smtplib
import stat
import subprocess
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from cfadmin.management import startup_summary
from ops.management.commands import runlocal
from ops.models import ChannelKind, NotificationChannel

URL = "http://127.0.0.1:8000/admin/"
RESET = "manage.py changepassword admin"

pytestmark = pytest.mark.django_db


@pytest.fixture
def dev(settings, tmp_path):
    """`make run`'s settings: DEBUG on, a data folder of the test's own."""
    settings.DEBUG = True
    settings.DATA_DIR = tmp_path
    settings.CFADMIN_ADMIN_USERNAME = "admin"
    settings.CFADMIN_ADMIN_PASSWORD = ""
    return tmp_path


def ensure_admin(*args: str) -> str:
    out = io.StringIO()
    call_command("ensure_admin", *args, stdout=out)
    return out.getvalue()


def box_lines(text: str) -> list[str]:
    """The rows inside the frame, without the frame."""
    rows = text.strip().splitlines()
    assert rows[0].startswith("╔") and rows[-1].startswith("╚"), text
    assert len({len(row) for row in rows}) == 1, text  # a closed, even frame
    return [row[2:-2].rstrip() for row in rows[1:-1]]


def test_a_new_password_waits_for_the_box_and_is_shown_there_once(dev):
    created = ensure_admin()

    user = get_user_model().objects.get(username="admin")
    kept = dev / startup_summary.PASSWORD_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    password = startup_summary.json.loads(kept.read_text())["password"]
    assert user.check_password(password)
    assert password not in created  # not lost among the migrations
    assert "Admin login created: user 'admin'" in created
    assert (
        f"Set or reset the password: {startup_summary.reset_password_command('admin')}" in created
    )

    rows = box_lines(startup_summary.startup_summary(URL, ["Coolify:    http://x"]))

    text = "\n".join(rows)
    assert rows[0] == f"cfadmin is up: {URL}"
    assert "Username:  admin" in rows
    assert f"Password:  {password}" in text and "only this once" in text
    assert any(row.strip().endswith(RESET) for row in rows)
    assert "Coolify:    http://x" in rows
    assert not kept.exists()

    again = "\n".join(box_lines(startup_summary.startup_summary(URL)))
    assert password not in again  # once
    assert "Username:  admin" in again and RESET in again
    assert "shown once when the user was created" in again


def test_outside_development_ensure_admin_prints_the_password_itself(dev, settings):
    settings.DEBUG = False
    created = ensure_admin()

    assert not (dev / startup_summary.PASSWORD_FILE).exists()
    password = created.split("password ", 1)[1].split(" ", 1)[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert RESET in created


def test_show_password_prints_it_at_once_in_development_too(dev):
    created = ensure_admin("--show-password")

    assert not (dev / startup_summary.PASSWORD_FILE).exists()
    assert "shown only this once" in created


def test_an_existing_admin_gets_the_reset_command(dev, django_user_model):
    django_user_model.objects.create_superuser("admin", "", "s3cret-pass")
    out = ensure_admin()

    assert RESET in out and "s3cret-pass" not in out
    assert not (dev / startup_summary.PASSWORD_FILE).exists()


def test_the_box_says_how_to_create_a_login_when_there_is_none(dev):
    text = "\n".join(box_lines(startup_summary.startup_summary(URL)))
    assert "none yet" in text and "manage.py ensure_admin" in text


def test_a_long_line_wraps_inside_the_frame_and_a_command_is_never_broken():
    long_command = "  /a/very/long/path/" + "x" * 60 + "/bin/python manage.py changepassword admin"
    rows = box_lines(startup_summary.boxed(["word " * 40, long_command]))
    assert max(len(row) for row in rows[:-1]) <= startup_summary.BOX_TEXT_WIDTH
    assert rows[-1] == long_command


class FakeProcess:
    returncode = None

    def __init__(self, argv, **kwargs):
        self.argv = argv

    def poll(self):
        return None

    def send_signal(self, signum):
        self.returncode = 0

    def wait(self, timeout=None):
        return 0


def test_runlocal_ends_its_start_up_with_the_box(dev, monkeypatch):
    ensure_admin()
    password = startup_summary.json.loads((dev / startup_summary.PASSWORD_FILE).read_text())[
        "password"
    ]
    monkeypatch.setattr(runlocal.Command, "start_coolify", lambda self, manage: {})
    monkeypatch.setattr(runlocal.Command, "start_pocketbase", lambda self: {})
    monkeypatch.setattr(subprocess, "Popen", FakeProcess)
    requested = SimpleNamespace(occurred_at=None)
    monkeypatch.setattr(runlocal, "request_health_run", lambda actor: requested)
    monkeypatch.setattr(runlocal, "health_run_began_since", lambda moment: True)
    served = []
    monkeypatch.setattr(
        runlocal.httpx,
        "get",
        lambda url, timeout: served.append(url) or SimpleNamespace(status_code=200),
    )
    monkeypatch.setattr(runlocal.Command, "watch", lambda self: None)  # as if Ctrl-C at once
    out = io.StringIO()

    call_command("runlocal", "--bind", "127.0.0.1:8000", stdout=out, stderr=io.StringIO())

    assert served == [f"{URL}login/"]  # it waited for the server before the summary
    text = out.getvalue()
    box = text[text.index("╔") : text.index("╝") + 1]
    assert text.index("╔") == 0  # nothing of runlocal's own before it
    assert text[text.index("╝") + 1 :].strip() == "cfadmin stopped."  # and nothing after
    rows = box_lines(box)
    assert rows[0] == f"cfadmin is up: {URL}"
    assert "Username:  admin" in rows
    assert f"Password:  {password}" in "\n".join(rows)
    assert any(row.strip().endswith(RESET) for row in rows)


# --- the local mail catcher and the status page (issue 16) ------------------------------------


def run_runlocal(monkeypatch, during=lambda command, env: None) -> tuple[str, dict[str, str]]:
    """runlocal with its children stood in for; `during(command, children's env)` runs while
    it is up. Returns what it printed and the children's environment."""
    launched: list[dict[str, str]] = []

    class Child(FakeProcess):
        def __init__(self, argv, **kwargs):
            super().__init__(argv, **kwargs)
            launched.append(kwargs.get("env") or {})

    monkeypatch.setattr(runlocal.Command, "start_coolify", lambda self, manage: {})
    monkeypatch.setattr(runlocal.Command, "start_pocketbase", lambda self: {})
    monkeypatch.setattr(subprocess, "Popen", Child)
    monkeypatch.setattr(
        runlocal, "request_health_run", lambda actor: SimpleNamespace(occurred_at=None)
    )
    monkeypatch.setattr(runlocal, "health_run_began_since", lambda moment: True)
    monkeypatch.setattr(
        runlocal.httpx, "get", lambda url, timeout: SimpleNamespace(status_code=200)
    )
    monkeypatch.setattr(runlocal.Command, "watch", lambda self: during(self, launched[0]))
    out = io.StringIO()
    call_command("runlocal", "--bind", "127.0.0.1:8000", stdout=out, stderr=io.StringIO())
    return out.getvalue(), launched[0]


def box_text(text: str) -> str:
    """The box's words as one line (prose wraps inside the frame)."""
    return " ".join(" ".join(box_lines(text[text.index("╔") : text.index("╝") + 1])).split())


def test_runlocal_catches_the_mail_the_children_send_and_says_so(dev, monkeypatch):
    def send_a_page(command, env):
        with smtplib.SMTP(env["EMAIL_HOST"], int(env["EMAIL_PORT"]), timeout=5) as smtp:
            smtp.sendmail(
                "cfadmin@localhost",
                ["platform-team@localhost"],
                "Subject: [SEV1] Incident opened: #1 Coolify API down\r\n\r\nOpen it.\r\n",
            )

    text, env = run_runlocal(monkeypatch, send_a_page)

    box = box_text(text)
    assert "Status page: http://127.0.0.1:8000/status/ (public, no login)" in box
    mail = (  # a long folder may wrap at a hyphen: compared without spaces
        f"Mail: caught locally (127.0.0.1:{env['EMAIL_PORT']}), printed here and kept in "
        f"{dev / 'mailbox'}/; nothing leaves this machine."
    )
    assert "".join(mail.split()) in "".join(box.split())
    assert "Paging: Platform Down → Platform Team: platform-team@localhost" in box
    assert env["EMAIL_HOST"] == "127.0.0.1" and env["EMAIL_PORT"] != "25"
    after = text[text.index("╝") + 1 :]
    assert "✉ mail to platform-team@localhost: [SEV1] Incident opened: #1 Coolify API down" in after
    kept = list((dev / "mailbox").glob("*.eml"))
    assert len(kept) == 1 and "Open it." in kept[0].read_text()
    channel = NotificationChannel.objects.get(contact__issue_type="Platform Down")
    assert (channel.kind, channel.url_hint) == (ChannelKind.EMAIL, "platform-team@localhost")


def test_runlocal_leaves_a_configured_mail_server_and_the_contacts_alone(
    dev, settings, monkeypatch
):
    settings.EMAIL_HOST, settings.EMAIL_PORT = "smtp.example.test", 587

    text, env = run_runlocal(monkeypatch)

    box = box_text(text)
    assert (
        "Mail: sent through the mail server smtp.example.test:587 (EMAIL_HOST/EMAIL_PORT)." in box
    )
    assert "Status page: http://127.0.0.1:8000/status/" in box
    assert "Paging:" not in box
    assert env.get("EMAIL_HOST", "smtp.example.test") == "smtp.example.test"
    assert not (dev / "mailbox").exists()
    assert not NotificationChannel.objects.exists()
