"""Deploy previews kept server-side between "Preview" and "Deploy": the request in the user's
session, env values encrypted, usable once and for 15 minutes, at most five kept."""

from __future__ import annotations

import secrets
import time
from typing import Any

from cfadmin import encryption
from stacks.plan import DeployRequest

PREVIEWS_SESSION_KEY = "cfadmin_deploy_previews"
PREVIEW_LIFETIME = 15 * 60  # seconds a dry-run may be turned into a deploy
PREVIEWS_KEPT = 5


def remember(session: Any, deploy_request: DeployRequest, *, now: float | None = None) -> str:
    """Keep the previewed request (secrets encrypted); the token names it for the Deploy button."""
    token = secrets.token_urlsafe(16)
    previews = session.get(PREVIEWS_SESSION_KEY, {})
    previews = dict(
        sorted(previews.items(), key=lambda item: item[1]["at"])[-(PREVIEWS_KEPT - 1) :]
    )
    previews[token] = {
        "at": time.time() if now is None else now,
        "request": {
            "tenant": deploy_request.tenant,
            "project_name": deploy_request.project_name,
            "template": deploy_request.template,
            "stack_name": deploy_request.stack_name,
            "domains": deploy_request.domains,
        },
        "env": {key: encryption.encrypt(value) for key, value in deploy_request.env.items()},
    }
    session[PREVIEWS_SESSION_KEY] = previews
    return token


def take(session: Any, token: str, *, now: float | None = None) -> DeployRequest | None:
    """The remembered request, removed from the session (used once); None when unknown, used
    already or older than PREVIEW_LIFETIME."""
    previews = session.get(PREVIEWS_SESSION_KEY, {})
    preview = previews.pop(token, None)
    session[PREVIEWS_SESSION_KEY] = previews
    moment = time.time() if now is None else now
    if preview is None or moment - preview["at"] > PREVIEW_LIFETIME:
        return None
    return DeployRequest(
        **{
            **preview["request"],
            "domains": [tuple(pair) for pair in preview["request"]["domains"]],
        },
        env={key: encryption.decrypt(value) for key, value in preview["env"].items()},
    )


# --- secrets typed into a form that was shown again -------------------------------------------
# A form with an error (a failed preview, a refused rotation) is shown again without the secret
# values in it: they are kept here, encrypted, under a random token the form carries, so the
# person need not paste them again. `purpose` ties a token to one form (the deploy form, one
# stack's rotation) so it is never used by another.

KEPT_SESSION_KEY = "cfadmin_kept_secrets"


def keep_secrets(
    session: Any,
    purpose: str,
    values: dict[str, str],
    *,
    replaces: str = "",
    now: float | None = None,
) -> str:
    """Keep `values` (encrypted) for the form shown again; the token replaces `replaces`.
    Returns "" when there is nothing to keep."""
    kept = dict(session.get(KEPT_SESSION_KEY, {}))
    kept.pop(replaces, None)
    kept = dict(sorted(kept.items(), key=lambda item: item[1]["at"])[-(PREVIEWS_KEPT - 1) :])
    token = ""
    if values:
        token = secrets.token_urlsafe(16)
        kept[token] = {
            "at": time.time() if now is None else now,
            "purpose": purpose,
            "env": {key: encryption.encrypt(value) for key, value in values.items()},
        }
    session[KEPT_SESSION_KEY] = kept
    return token


def kept_secrets(
    session: Any, purpose: str, token: str, *, now: float | None = None
) -> dict[str, str]:
    """The values kept under `token` for `purpose`; {} when unknown, for another form or older
    than PREVIEW_LIFETIME."""
    entry = session.get(KEPT_SESSION_KEY, {}).get(token) if token else None
    moment = time.time() if now is None else now
    if entry is None or entry["purpose"] != purpose or moment - entry["at"] > PREVIEW_LIFETIME:
        return {}
    return {key: encryption.decrypt(value) for key, value in entry["env"].items()}


def forget_secrets(session: Any, token: str) -> None:
    """Drop kept values once they were used (deployed, rotated)."""
    kept = dict(session.get(KEPT_SESSION_KEY, {}))
    if kept.pop(token, None) is not None:
        session[KEPT_SESSION_KEY] = kept
