"""cfadmin settings, the operations part (health checks, incidents, their response features,
notifications and the status page): read from the environment like cfadmin.settings, which
imports every name here (split off by size; cfadmin.settings is read first and has loaded the
`.env` file into the environment)."""

from __future__ import annotations

import environ
from django.core.exceptions import ImproperlyConfigured

from cfadmin.business_hours import BusinessHours

env = environ.Env()
TIME_ZONE = env.str("TIME_ZONE", default="UTC")

# --- Health checks and automatic checklist probes (ops/) -------------------------------------
HEALTHCHECK_TIMEOUT: float = env.float("HEALTHCHECK_TIMEOUT", default=10.0)
HEALTHCHECK_INTERVAL_MINUTES: int = env.int("HEALTHCHECK_INTERVAL_MINUTES", default=5)
# The runbook's disk check; production: e.g. "ssh root@coolify.example.com df -P /".
HEALTHCHECK_DISK_COMMAND: str = env.str("HEALTHCHECK_DISK_COMMAND", default="df -P /")
HEALTHCHECK_DISK_WARN_PERCENT: int = env.int("HEALTHCHECK_DISK_WARN_PERCENT", default=80)
HEALTHCHECK_DISK_DOWN_PERCENT: int = env.int("HEALTHCHECK_DISK_DOWN_PERCENT", default=90)
# Probing customers' domains (DNS, HTTPS) reaches the internet: off unless enabled.
HEALTHCHECK_HTTPS: bool = env.bool("HEALTHCHECK_HTTPS", default=False)
PROBE_EXTERNAL: bool = env.bool("PROBE_EXTERNAL", default=False)
# host=ip:port pairs that probes use instead of DNS (tests, staging): "a.example=127.0.0.1:8443"
PROBE_RESOLVE: dict[str, str] = env.dict("PROBE_RESOLVE", default={})
# A CA bundle for HTTPS probes (tests use a local CA); empty: the system's.
PROBE_CA_FILE: str = env.str("PROBE_CA_FILE", default="")
HTTPS_CERT_WARN_DAYS: int = env.int("HTTPS_CERT_WARN_DAYS", default=14)
# The HTTPS check probes this many domains at once, each healthy domain every
# HTTPS_RECHECK_MINUTES and each failing one every HTTPS_FAILING_RECHECK_MINUTES (0: every run),
# within HEALTHCHECK_TIMEOUT per run; domains it did not reach are probed first next run.
HTTPS_PROBE_WORKERS: int = env.int("HTTPS_PROBE_WORKERS", default=32)
HTTPS_RECHECK_MINUTES: int = env.int("HTTPS_RECHECK_MINUTES", default=60)
HTTPS_FAILING_RECHECK_MINUTES: int = env.int("HTTPS_FAILING_RECHECK_MINUTES", default=0)
# Health results (and HTTPS status changes) are kept this many days, daily rollups (uptime)
# this many; a daily job prunes them HEALTH_PRUNE_BATCH rows per transaction.
HEALTH_RESULT_RETENTION_DAYS: int = env.int("HEALTH_RESULT_RETENTION_DAYS", default=90)
HEALTH_ROLLUP_RETENTION_DAYS: int = env.int("HEALTH_ROLLUP_RETENTION_DAYS", default=366)
HEALTH_PRUNE_BATCH: int = env.int("HEALTH_PRUNE_BATCH", default=1000)
# The operations dashboard's figures are reused this long within a worker process.
DASHBOARD_CACHE_SECONDS: float = env.float("DASHBOARD_CACHE_SECONDS", default=3.0)

# --- Incidents (ops/) -------------------------------------------------------------------------
# When response targets marked "business hours only" run (the runbook's "4h business").
try:
    BUSINESS_HOURS = BusinessHours.parse(
        env.str("BUSINESS_HOURS", default="09:00-17:00"),
        env.list("BUSINESS_DAYS", default=["mon", "tue", "wed", "thu", "fri"]),
        env.str("BUSINESS_TIME_ZONE", default=TIME_ZONE),
    )
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None

# --- Incidents that act (ops/response/, issue 15) ---------------------------------------------
# [evidence] Lines of each container's log an evidence capture keeps.
EVIDENCE_LOG_LINES: int = env.int("EVIDENCE_LOG_LINES", default=200)
# [leaks] Rotations of a leaked value queued per minute (and at most in flight): about two
# Coolify calls each, against Coolify's 200 calls/min per token.
LEAK_ROTATIONS_PER_MINUTE: int = env.int("LEAK_ROTATIONS_PER_MINUTE", default=40)
# [mass failure] This many stacks leaving `running` within this many minutes is a mass failure.
MASS_FAILURE_STACKS: int = env.int("MASS_FAILURE_STACKS", default=5)
MASS_FAILURE_WINDOW_MINUTES: int = env.int("MASS_FAILURE_WINDOW_MINUTES", default=10)
# [auto-incidents] A critical health check down this many runs in a row opens (or joins) a
# Platform Down incident.
AUTO_INCIDENT_AFTER_FAILURES: int = env.int("AUTO_INCIDENT_AFTER_FAILURES", default=3)
# [recovery] A PocketBase backup younger than this many hours must exist (health check).
POCKETBASE_BACKUP_MAX_AGE_HOURS: int = env.int("POCKETBASE_BACKUP_MAX_AGE_HOURS", default=26)
# [recovery] Where Docker keeps volume data on the Coolify server: a stack redeployed onto kept
# volumes mounts `<this>/<kept volume>/_data` (Coolify renames every named volume of a service).
DOCKER_VOLUMES_ROOT: str = env.str("DOCKER_VOLUMES_ROOT", default="/var/lib/docker/volumes")
# [resources] How a command runs on a Coolify server: "{host}", "{user}", "{port}" (from Coolify's
# GET /servers) and "{command}" are filled in, shell-quoted, e.g.
# "ssh -o BatchMode=yes -o ConnectTimeout=5 -p {port} {user}@{host} {command}"; empty: the
# resource checks are off (`make run` points it at the simulator's stand-in shell).
SERVER_COMMAND: str = env.str("SERVER_COMMAND", default="")

# --- Telling people (ops/notifications/, ops/status_page/, issue 16) ---------------------------
# Links in notifications and customer e-mails start with this (the address people open cfadmin
# at); the status page's feeds use it too.
CFADMIN_BASE_URL: str = env.str("CFADMIN_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# E-mail (notifications to an address, customer updates): an SMTP relay. `make run` starts a
# local mail catcher and points these at it.
EMAIL_HOST: str = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT: int = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER: str = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD: str = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS: bool = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT: int = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="cfadmin@localhost")
# A notification with the same subject to the same channel within this many minutes is
# recorded as a suppressed duplicate, not sent (a flapping check does not page 50 times).
NOTIFY_DEDUPE_MINUTES: int = env.int("NOTIFY_DEDUPE_MINUTES", default=30)
# A check's recovery is told once it has lasted this long (three health runs): failing again
# before then cancels it, so a flapping check never leaves people believing it is up.
NOTIFY_RECOVERY_QUIET_MINUTES: int = env.int("NOTIFY_RECOVERY_QUIET_MINUTES", default=15)
# A failed delivery is retried after BASE seconds, doubling up to MAX, at most ATTEMPTS times.
NOTIFY_RETRY_BASE_SECONDS: int = env.int("NOTIFY_RETRY_BASE_SECONDS", default=60)
NOTIFY_RETRY_MAX_SECONDS: int = env.int("NOTIFY_RETRY_MAX_SECONDS", default=3600)
NOTIFY_MAX_ATTEMPTS: int = env.int("NOTIFY_MAX_ATTEMPTS", default=6)
NOTIFY_TIMEOUT_SECONDS: float = env.float("NOTIFY_TIMEOUT_SECONDS", default=10.0)
# A channel whose deliveries failed this many times in a row is a warning on the dashboard.
NOTIFY_CHANNEL_FAILURES_WARNING: int = env.int("NOTIFY_CHANNEL_FAILURES_WARNING", default=3)
# The public status page: served by this app under this path, cached this many seconds.
STATUS_PAGE_PATH: str = env.str("STATUS_PAGE_PATH", default="status/").strip("/") + "/"
STATUS_PAGE_CACHE_SECONDS: int = env.int("STATUS_PAGE_CACHE_SECONDS", default=30)
STATUS_PAGE_TITLE: str = env.str("STATUS_PAGE_TITLE", default="CloudFreedom status")
# The maintenance procedure's "announce" step: a window announced at least this long ahead.
MAINTENANCE_NOTICE_HOURS: int = env.int("MAINTENANCE_NOTICE_HOURS", default=48)

# --- Fleet maintenance: rollouts and maintenance windows (ops/rollouts/, ops/maintenance/) -----
# A rollout stack's validation probes must have run this long after its redeploy ended, or the
# stack fails (and halts the rollout): lost probes must not hold a wave for ever. Half-way
# there, probes that have still not run are queued once more.
ROLLOUT_VALIDATION_TIMEOUT_MINUTES: int = env.int("ROLLOUT_VALIDATION_TIMEOUT_MINUTES", default=30)
# A maintenance window's before-checks (Coolify's version, a PocketBase backup, the stacks'
# statuses) run this long before it starts: the runbook backs up before the update begins.
MAINTENANCE_BEFORE_CHECKS_MINUTES: int = env.int("MAINTENANCE_BEFORE_CHECKS_MINUTES", default=15)
