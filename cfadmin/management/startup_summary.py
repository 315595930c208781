"""The box `make run` ends its start-up with: where cfadmin is, who logs in, how to (re)set it.

`make run` runs `ensure_admin` before `runlocal`, and its output scrolls away under the
server's. So in development (DEBUG) a freshly generated password is not printed by
`ensure_admin`: it waits in a file only the user can read (`data/admin-password.once`) and
`runlocal` shows it once, inside the box, printed after everything else has started, then
deletes the file. Outside DEBUG `ensure_admin` prints it at once, as before.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from cfadmin.management.mail_catcher import MAILBOX

PASSWORD_FILE = "admin-password.once"
BOX_TEXT_WIDTH = 76  # prose wraps at this width; a command is never broken


def password_file() -> Path:
    return Path(settings.DATA_DIR) / PASSWORD_FILE


def hands_password_to_summary() -> bool:
    """Only the development flow (`make run` writes DEBUG=true) ends with runlocal's box."""
    return bool(settings.DEBUG)


def keep_password_for_summary(username: str, password: str) -> Path:
    """Store the new login for runlocal's box; readable by the owner only, never logged."""
    path = password_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"username": username, "password": password}, handle)
    path.chmod(0o600)  # an existing file keeps its mode with O_CREAT
    return path


def take_kept_password() -> tuple[str, str] | None:
    """(username, password) kept by ensure_admin, once: the file is gone afterwards."""
    path = password_file()
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        path.unlink(missing_ok=True)
    if not isinstance(kept, dict) or not kept.get("password"):
        return None
    return str(kept.get("username") or settings.CFADMIN_ADMIN_USERNAME), str(kept["password"])


def manage_command(*args: str) -> str:
    """A command line to paste, with this checkout's interpreter (`.venv/bin/python …`)."""
    python = Path(sys.executable)
    manage = Path(settings.BASE_DIR) / "manage.py"
    if python.is_relative_to(settings.BASE_DIR):
        python_text, manage_text = str(python.relative_to(settings.BASE_DIR)), "manage.py"
    else:
        python_text, manage_text = str(python), str(manage)
    return " ".join([python_text, manage_text, *args])


def reset_password_command(username: str) -> str:
    return manage_command("changepassword", username)


def admin_username() -> str | None:
    """The configured admin if it exists, else the first superuser; None when there is none."""
    users = get_user_model().objects.filter(is_superuser=True, is_active=True)
    configured = users.filter(username=settings.CFADMIN_ADMIN_USERNAME).first()
    if configured is not None:
        return configured.get_username()
    first = users.order_by("pk").first()
    return first.get_username() if first is not None else None


def second_factor_note() -> str:
    if settings.MFA_ENFORCED:
        return (
            "Second factor: required (MFA_ENFORCED); the first login asks to set up an "
            "authenticator app and shows recovery codes once."
        )
    return (
        "Second factor: not enforced (MFA_ENFORCED is off, the default with DEBUG on); "
        "the password alone logs in."
    )


def login_lines(kept: tuple[str, str] | None) -> list[str]:
    """Username, password (only when just generated) and the command that sets or resets it."""
    username = kept[0] if kept else admin_username()
    if username is None:
        return [
            "Username:  none yet (no superuser)",
            f"Create one: {manage_command('ensure_admin')}",
        ]
    if kept:
        password = f"Password:  {kept[1]}   (generated: shown only this once, keep it)"
    elif settings.CFADMIN_ADMIN_PASSWORD:
        password = "Password:  CFADMIN_ADMIN_PASSWORD (set when the user was created)"
    else:
        password = "Password:  shown once when the user was created"
    return [
        f"Username:  {username}",
        password,
        "Set or reset the password:",
        f"  {reset_password_command(username)}",
        second_factor_note(),
    ]


def boxed(lines: Iterable[str]) -> str:
    """The lines in a frame that stands out from the log lines around it; "" draws a gap.
    Prose wraps; an indented line (a command to paste) is kept whole and widens the box."""
    rows: list[str] = []
    for line in lines:
        if line[:1].isspace():
            rows.append(line)
            continue
        rows.extend(textwrap.wrap(line, BOX_TEXT_WIDTH, subsequent_indent="  ") or [""])
    width = max(len(row) for row in rows)
    top = "╔" + "═" * (width + 2) + "╗"
    bottom = "╚" + "═" * (width + 2) + "╝"
    return "\n".join([top, *(f"║ {row.ljust(width)} ║" for row in rows), bottom])


def status_page_line(admin_url: str) -> str:
    """Where the public status page is, next to the admin (settings.STATUS_PAGE_PATH)."""
    site = admin_url.split("/admin/", 1)[0].rstrip("/")
    return f"Status page: {site}/{settings.STATUS_PAGE_PATH}  (public, no login)"


def mail_lines(*, caught: bool, server: str, paged: str = "") -> list[str]:
    """Where e-mail goes: the local catcher (`make run`) or the configured server."""
    if not caught:
        return [f"Mail: sent through the mail server {server} (EMAIL_HOST/EMAIL_PORT)."]
    folder = Path(settings.DATA_DIR) / MAILBOX
    if folder.is_relative_to(settings.BASE_DIR):
        folder = folder.relative_to(settings.BASE_DIR)
    lines = [
        f"Mail: caught locally ({server}), printed here and kept in {folder}/; "
        "nothing leaves this machine."
    ]
    if paged:
        lines.append(
            f"Paging: {paged} (a development channel: open an incident to see it arrive; "
            "change it under Escalation contacts)."
        )
    return lines


def startup_summary(url: str, services: Iterable[str] = ()) -> str:
    """runlocal's closing box; takes (and deletes) a password ensure_admin kept for it."""
    return boxed(
        [
            f"cfadmin is up: {url}",
            "",
            *login_lines(take_kept_password()),
            *(["", *services] if services else []),
            "",
            "Ctrl-C stops everything.",
        ]
    )
