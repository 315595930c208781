"""Test environment: fixed, obviously fake values set before cfadmin.settings reads them.

Not a second configuration: every setting still comes from cfadmin.settings. The real
environment wins (DATABASE_URL selects PostgreSQL in CI).
"""

import os
import tempfile

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-only-" + "k" * 60)
# Two keys so tests can exercise rotation; both are fake and used nowhere else.
os.environ.setdefault(
    "SECRETS_ENCRYPTION_KEYS",
    "dGVzdC1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=,b2xkLXRlc3Qta2V5LTAwMDAwMDAwMDAwMDAwMDAwMDA=",
)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("CSRF_COOKIE_SECURE", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("STATIC_MANIFEST", "false")
# Tasks are queued (ORM broker) but run only where a test runs them: the deploy flow tests
# call provisioning directly, and one test runs a real qcluster.
os.environ.setdefault("Q_SYNC", "false")
os.environ.setdefault("CFADMIN_ENV_FILE", "/nonexistent/.env")
# Most tests log in with force_login (a password only); the second factor's own tests
# (tests/unit/test_mfa.py, tests/e2e/test_security_browser.py) switch enforcement on.
os.environ.setdefault("MFA_ENFORCED", "false")  # a developer's .env stays out
# Every dashboard view computes its figures (the reuse has its own test).
os.environ.setdefault("DASHBOARD_CACHE_SECONDS", "0")

from cfadmin.settings import *  # noqa: F403

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory, so a real qcluster process can share the test database; one per
    # pytest process, so parallel runs never meet.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"cfadmin-test-{os.getpid()}.sqlite3")
    }
