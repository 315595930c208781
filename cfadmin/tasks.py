"""django-q2 tasks of the cfadmin app."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings


def clear_expired_sessions_task() -> None:
    """What `manage.py clearsessions` does: the session store deletes its expired sessions
    (the database backend's table would otherwise grow with every login)."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
