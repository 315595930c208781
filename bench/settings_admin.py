"""Settings of the admin benchmark: cfadmin's own, with DEBUG off, fixed bench-only keys, the
second factor off (pages are timed for a logged-in user; the login flow is bench-web's), and
an urlconf that adds the bare admin (bench/bare_admin.py) beside cfadmin's.

Like tests/settings.py it only sets environment defaults before cfadmin.settings reads them;
DATABASE_URL is set by the benchmark (bench/dataset.py) for each dataset.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "bench-only-" + "b" * 60)
# Fake Fernet key, used for the bench databases only (stack secrets are generated with it).
os.environ.setdefault("SECRETS_ENCRYPTION_KEYS", "YmVuY2gta2V5LTAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("CSRF_COOKIE_SECURE", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault("Q_SYNC", "false")
os.environ.setdefault("CFADMIN_ENV_FILE", "/nonexistent/.env")
os.environ.setdefault("MFA_ENFORCED", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Each dashboard view computes its figures: the benchmark times the work, not the reuse
# (and it switches databases within one process, which the per-process reuse does not expect).
os.environ.setdefault("DASHBOARD_CACHE_SECONDS", "0")
# The test client never asks for static files; an empty directory keeps whitenoise quiet.
_static = Path(tempfile.gettempdir()) / "cfadmin-bench" / "static"
_static.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("STATIC_ROOT", str(_static))

from cfadmin.settings import *  # noqa: E402, F403

ROOT_URLCONF = "bench.bare_admin"
