"""cfadmin settings: with cfadmin.settings_ops (imported below), the only modules that read the
environment.

Every value that differs between a laptop and production comes from the environment or
from a `.env` file beside manage.py (see `.env.example`). Defaults point at loopback only.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from cfadmin import roles
from cfadmin.security.config import parse_lockout_parameters, parse_trusted_proxies

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
ENV_FILE = Path(env.str("CFADMIN_ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    env.read_env(str(ENV_FILE), overwrite=False)

DEBUG: bool = env.bool("DEBUG", default=False)
DATA_DIR = Path(env.str("CFADMIN_DATA_DIR", default=str(BASE_DIR / "data")))

# --- Core -------------------------------------------------------------------------------------
SECRET_KEY: str = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment or .env (50+ random characters); "
            "`make run` writes a development .env for you."
        )
    SECRET_KEY = "dev-only-insecure-key-set-SECRET_KEY-in-production-0123456789abcdef"

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "cfadmin.apps.CfadminConfig",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    # htmx for the live regions: request.htmx, and htmx itself from its static files.
    "django_htmx",
    "tenants.apps.TenantsConfig",
    "stacks.apps.StacksConfig",
    "ops.apps.OpsConfig",
]

MIDDLEWARE = [
    # First, so a container health probe never trips host validation or the SSL redirect.
    "cfadmin.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Who is asking, for audit events written outside the admin classes (password changes).
    "cfadmin.security.request_context.RequestContextMiddleware",
    # Sets request.user.otp_device from the session; the two after it need it.
    "django_otp.middleware.OTPMiddleware",
    "cfadmin.security.idle_timeout.SessionTimeoutMiddleware",
    "cfadmin.security.mfa_gate.SecondFactorRequiredMiddleware",
    # Last, as django-axes requires: turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "cfadmin.urls"
WSGI_APPLICATION = "cfadmin.wsgi.application"
ASGI_APPLICATION = "cfadmin.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'cfadmin.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE takes the write lock at BEGIN, so concurrent writers wait instead of failing
    # half-way; WAL lets the web read while the worker writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files (whitenoise serves them, in the container too) ------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Hashed, compressed files from `collectstatic` (the container); plain finders elsewhere.
STATIC_MANIFEST: bool = env.bool("STATIC_MANIFEST", default=not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if not STATIC_MANIFEST
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        ),
    },
}

# --- Security (production values are the defaults whenever DEBUG is off) ------------------------
# The reverse proxies in front of cfadmin (addresses or networks, comma-separated). gunicorn reads
# the same variable: it takes the scheme (X-Forwarded-Proto) only from these peers, and cfadmin
# takes the client address (X-Forwarded-For) only from them. Django itself trusts no header for
# the scheme (no SECURE_PROXY_SSL_HEADER): request.is_secure() is what gunicorn decided.
try:
    TRUSTED_PROXIES = parse_trusted_proxies(env.str("FORWARDED_ALLOW_IPS", default="127.0.0.1,::1"))
except ValueError as error:
    raise ImproperlyConfigured(f"FORWARDED_ALLOW_IPS: {error}") from None
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD: bool = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE: bool = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE: bool = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# A session ends after SESSION_IDLE_TIMEOUT seconds without a request, and SESSION_COOKIE_AGE
# seconds after its login whatever happens (cfadmin/security/idle_timeout.py).
SESSION_COOKIE_AGE: int = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
SESSION_IDLE_TIMEOUT: int = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): no inline script or style anywhere; pages load their
# styles and scripts from cfadmin/static/cfadmin/ (cfadmin.css, live.js, …) and htmx from
# django-htmx's static files.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

# --- Login lockout (django-axes) ------------------------------------------------------------
# After LOGIN_FAILURE_LIMIT failed logins, logins are refused for LOGIN_COOLOFF_MINUTES; an admin
# can clear it earlier (Users > "Unlock login", or Axes > Access attempts > "Unlock").
# LOGIN_LOCKOUT_PARAMETERS: each comma-separated rule counts on its own; "username+ip_address"
# counts the pair.
AXES_ENABLED = True
AXES_FAILURE_LIMIT: int = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
try:
    AXES_LOCKOUT_PARAMETERS = parse_lockout_parameters(
        env.list("LOGIN_LOCKOUT_PARAMETERS", default=["username", "ip_address"])
    )
except ValueError as error:
    raise ImproperlyConfigured(f"LOGIN_LOCKOUT_PARAMETERS: {error}") from None
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "cfadmin.security.proxies.client_address"
AXES_LOCKOUT_CALLABLE = "cfadmin.security.lockout.lockout_response"
# cfadmin's audit trail records every login, logout and failure; axes keeps only the counters.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False

# --- Second factor (django-otp: TOTP, recovery codes) -------------------------------------
# Members of MFA_REQUIRED_ROLES and superusers must enrol and use a TOTP app; others may.
# Enforced by default whenever DEBUG is off; `make run`'s development .env has DEBUG on, so its
# printed admin login works with the password alone (set MFA_ENFORCED=true to try the flow).
MFA_ENFORCED: bool = env.bool("MFA_ENFORCED", default=not DEBUG)
MFA_REQUIRED_ROLES: list[str] = env.list(
    "MFA_REQUIRED_ROLES", default=[roles.OPERATOR, roles.ADMIN]
)
OTP_TOTP_ISSUER: str = env.str("MFA_ISSUER", default="cfadmin")
# The TOTP key is shown once, at enrolment; django-otp's own admin would show it again.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- Secrets at rest ----------------------------------------------------------------------------
# Comma-separated Fernet keys, newest first: encrypt with the first, decrypt with any. Rotate by
# putting a new key in front, running `manage.py rotate_secret_keys`, then dropping the old one.
SECRETS_ENCRYPTION_KEYS: list[str] = env.list("SECRETS_ENCRYPTION_KEYS", default=[])
SECRETS_ENCRYPTION_KEYS_ARE_DEV_FALLBACK = False
if not SECRETS_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRETS_ENCRYPTION_KEYS is not set: cfadmin cannot store API keys or bot tokens "
            'without it. Generate one with `python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"` and set it in the environment or .env.'
        )
    # Development only: a key derived from SECRET_KEY, flagged by the check cfadmin.W001.
    SECRETS_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]
    SECRETS_ENCRYPTION_KEYS_ARE_DEV_FALLBACK = True

# --- Background jobs (django-q2) ----------------------------------------------------------------
REDIS_URL: str = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "cfadmin",
    "workers": env.int("Q_WORKERS", default=2),
    # A task may run for `timeout` seconds; `retry` must be larger, or the broker hands a task
    # that is still running to a second worker (PITFALLS.md).
    "timeout": env.int("Q_TIMEOUT", default=600),
    "retry": env.int("Q_TIMEOUT", default=600) + 120,
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "sync": env.bool("Q_SYNC", default=False),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Integrations (used by the provisioning engine; loopback by default) -----------------------
COOLIFY_URL: str = env.str("COOLIFY_URL", default="")
COOLIFY_TOKEN: str = env.str("COOLIFY_TOKEN", default="")
COOLIFY_SERVER_UUID: str = env.str("COOLIFY_SERVER_UUID", default="")
COOLIFY_TIMEOUT: float = env.float("COOLIFY_TIMEOUT", default=15.0)
POCKETBASE_URL: str = env.str("POCKETBASE_URL", default="")
POCKETBASE_EMAIL: str = env.str("POCKETBASE_EMAIL", default="")
POCKETBASE_PASSWORD: str = env.str("POCKETBASE_PASSWORD", default="")
POCKETBASE_TOKEN: str = env.str("POCKETBASE_TOKEN", default="")
POCKETBASE_TIMEOUT: float = env.float("POCKETBASE_TIMEOUT", default=10.0)

# --- Provisioning (stacks/provisioning/) ----------------------------------------------------------
# Coolify environment new services go into (Coolify creates "production" with each project).
COOLIFY_ENVIRONMENT: str = env.str("COOLIFY_ENVIRONMENT", default="production")
# How long a deploy waits for running:healthy, and a delete for the service to be gone.
PROVISION_HEALTH_TIMEOUT: float = env.float("PROVISION_HEALTH_TIMEOUT", default=300.0)
PROVISION_DELETE_TIMEOUT: float = env.float("PROVISION_DELETE_TIMEOUT", default=180.0)
# Seconds between status polls; one `GET /services` per round serves every stack in flight.
PROVISION_POLL_INTERVAL: float = env.float("PROVISION_POLL_INTERVAL", default=3.0)
# A step whose remote call fails transiently is tried this many times within one run.
PROVISION_STEP_ATTEMPTS: int = env.int("PROVISION_STEP_ATTEMPTS", default=3)
# A running operation without a heartbeat for this long lost its worker; it is resumed up to
# PROVISION_MAX_ATTEMPTS times, then failed.
PROVISION_STALE_AFTER: float = env.float("PROVISION_STALE_AFTER", default=300.0)
PROVISION_MAX_ATTEMPTS: int = env.int("PROVISION_MAX_ATTEMPTS", default=3)
# A queued operation no worker took this long (its task was lost: the enqueue failed after
# commit, or a worker died between taking the task and claiming the row) is queued again; the
# wait doubles each time, and after PROVISION_QUEUED_MAX_ENQUEUES times it is failed.
PROVISION_QUEUED_STALE_AFTER: float = env.float("PROVISION_QUEUED_STALE_AFTER", default=120.0)
PROVISION_QUEUED_MAX_ENQUEUES: int = env.int("PROVISION_QUEUED_MAX_ENQUEUES", default=4)
# Each worker process runs that recovery and the PocketBase outbox when it starts, then every
# this many seconds (0: only the one-minute schedules do).
PROVISION_RECOVERY_INTERVAL: float = env.float("PROVISION_RECOVERY_INTERVAL", default=60.0)
# Background operations (rollouts, bulk actions by query) are queued and handed to the workers
# this many at a time, oldest first; operations a person asks for go at once (issue 17). The
# default leaves one worker free for them: with more in flight than workers, a person's restart
# would queue behind redeploys. Raise Q_WORKERS (and this) for large rollouts.
BACKGROUND_OPERATIONS_IN_FLIGHT: int = env.int(
    "BACKGROUND_OPERATIONS_IN_FLIGHT", default=max(1, Q_CLUSTER["workers"] - 1)
)
# Share of Coolify's per-minute budget that background calls (background operations,
# reconcile, probes; health checks go as interactive) leave for operations a person asked for.
COOLIFY_BACKGROUND_RESERVE_SHARE: float = env.float(
    "COOLIFY_BACKGROUND_RESERVE_SHARE", default=0.25
)
# Records PocketBase could not take are retried after BASE seconds, doubling up to MAX.
POCKETBASE_OUTBOX_RETRY_BASE: float = env.float("POCKETBASE_OUTBOX_RETRY_BASE", default=5.0)
POCKETBASE_OUTBOX_RETRY_MAX: float = env.float("POCKETBASE_OUTBOX_RETRY_MAX", default=300.0)
# Called with the operation after one succeeds (dotted paths; the ops app opens the runbook's
# post-deploy / post-delete validation checklist and verifies what a machine can, and captures
# an isolated stack's evidence on its incident).
OPERATION_SUCCESS_HOOKS: list[str] = [
    hook
    for hook in env.list(
        "OPERATION_SUCCESS_HOOKS",
        default=[
            "ops.checklists.open_validation_run",
            "ops.response.evidence.capture_after_isolation",
            "ops.probes_incident.recheck_after_operation",
            "ops.rollouts.jobs.operation_finished",
        ],
    )
    if hook
]

# Called with the operation after it failed: the ops app notifies the operator who asked, and
# a rollout judges its wave at once (not a minute later).
OPERATION_FAILURE_HOOKS: list[str] = [
    hook
    for hook in env.list(
        "OPERATION_FAILURE_HOOKS",
        default=[
            "ops.notifications.events.operation_failed",
            "ops.rollouts.jobs.operation_finished",
        ],
    )
    if hook
]

# Called with the operation when a worker starts it (not when it resumes one): the ops app
# captures the evidence of a stack about to be isolated while its containers still run.
OPERATION_START_HOOKS: list[str] = [
    hook
    for hook in env.list(
        "OPERATION_START_HOOKS", default=["ops.response.evidence.capture_before_isolation"]
    )
    if hook
]

# Compare cfadmin with Coolify and PocketBase this often (drift report; repairs are manual).
RECONCILE_INTERVAL_MINUTES: int = env.int("RECONCILE_INTERVAL_MINUTES", default=15)

# --- Operations: health checks, incidents, notifications, status page (its own module) ----
from cfadmin.settings_ops import *  # noqa: E402, F403

# --- Global search (the admin header's box, cfadmin/global_search.py) -------------------------
# Each app's provider of one kind of result, in the order the results page shows them.
GLOBAL_SEARCH_PROVIDERS: list[str] = [
    "tenants.search.find",
    "stacks.search_providers.find_stacks",
    "ops.search_providers.find_incidents",
    "stacks.search_providers.find_operations",
    "cfadmin.user_search.find_users",
]

# --- Local run (`make run`) ------------------------------------------------------------------
CFADMIN_ADMIN_USERNAME: str = env.str("CFADMIN_ADMIN_USERNAME", default="admin")
CFADMIN_ADMIN_PASSWORD: str = env.str("CFADMIN_ADMIN_PASSWORD", default="")
CFADMIN_BIND: str = env.str("CFADMIN_BIND", default="127.0.0.1:8000")
# Started by `make run` when COOLIFY_URL / POCKETBASE_URL are not set.
CFADMIN_SIMULATOR_PORT: int = env.int("CFADMIN_SIMULATOR_PORT", default=8711)
CFADMIN_SIMULATOR_TOKEN: str = env.str("CFADMIN_SIMULATOR_TOKEN", default="")
CFADMIN_POCKETBASE_PORT: int = env.int("CFADMIN_POCKETBASE_PORT", default=8090)
# Without COOLIFY_URL, `make run` serves the Coolify simulator; with the development .env's
# simulator token, every manage.py command (a shell too) then talks to it. Same for PocketBase.
COOLIFY_SIMULATED: bool = not COOLIFY_URL
if COOLIFY_SIMULATED and CFADMIN_SIMULATOR_TOKEN:
    COOLIFY_URL = f"http://127.0.0.1:{CFADMIN_SIMULATOR_PORT}"
    COOLIFY_TOKEN = CFADMIN_SIMULATOR_TOKEN
POCKETBASE_LOCAL: bool = not POCKETBASE_URL
if POCKETBASE_LOCAL and POCKETBASE_EMAIL and POCKETBASE_PASSWORD:
    POCKETBASE_URL = f"http://127.0.0.1:{CFADMIN_POCKETBASE_PORT}"

# --- Logging: to stderr; our own log lines never carry secret values ---------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},  # one line per request is noise; errors are ours to log
        "axes": {"level": "WARNING"},  # logins are in the audit trail; keep failures and lockouts
    },
}
