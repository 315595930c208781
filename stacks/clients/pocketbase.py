"""PocketBase (0.23+) as the platform's shared record of agent stacks. HTTP only, no Django.

A service superuser logs in lazily; its token is cached and renewed once when a call answers
401, or 403 "Only superusers…" (records endpoints say 403 for a dead token: NOTES.md §5). An
installation may pass a fixed token instead. Records never carry a secret.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from stacks.clients.errors import (
    AuthenticationFailed,
    BadRequest,
    ClientError,
    NotFound,
    PermissionDenied,
)
from stacks.clients.http import JsonHttpClient

COLLECTION = "agent_stacks"
STATUSES = ["pending", "deploying", "running", "stopped", "error", "deleting", "deleted"]
AGENT_STACKS_SCHEMA: dict[str, Any] = {
    "name": COLLECTION,
    "type": "base",
    # null rules: superusers only
    "listRule": None,
    "viewRule": None,
    "createRule": None,
    "updateRule": None,
    "deleteRule": None,
    "fields": [
        {"name": "tenant", "type": "text", "required": True, "max": 200},
        {"name": "stack_name", "type": "text", "required": True, "max": 200},
        {"name": "template", "type": "text"},
        {"name": "status", "type": "select", "maxSelect": 1, "values": STATUSES},
        {"name": "project_uuid", "type": "text"},
        {"name": "service_uuid", "type": "text"},
        {"name": "domains", "type": "json"},
        {"name": "django_id", "type": "number", "onlyInt": True},
        {"name": "created", "type": "autodate", "onCreate": True, "onUpdate": False},
        {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
    ],
    "indexes": [
        "CREATE UNIQUE INDEX idx_agent_stacks_tenant_stack ON agent_stacks (tenant, stack_name)"
    ],
}
# A backup name PocketBase takes (apis/backup_create.go: `^[a-z0-9_-]+\.zip$`, 150 max).
BACKUP_NAME = re.compile(r"[a-z0-9_-]{1,146}\.zip")
RECORD_FIELDS = frozenset(f["name"] for f in AGENT_STACKS_SCHEMA["fields"]) - {"created", "updated"}


def filter_literal(value: str) -> str:
    """A value quoted for a PocketBase filter (the REST API has no placeholders)."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class PocketBaseClient(JsonHttpClient):
    service = "PocketBase"
    # A record's fields and the collection's schema may come back in errors; the service
    # login's identity and password never do (clients/http.py scrubs them).
    public_fields = RECORD_FIELDS | frozenset(AGENT_STACKS_SCHEMA)

    def __init__(
        self, base_url: str, *, email: str = "", password: str = "", token: str = "", **kwargs: Any
    ) -> None:
        super().__init__(base_url, **kwargs)
        self._email = email
        self._password = password
        self._fixed_token = token
        self._token = token
        self._collection_ready = False

    def __repr__(self) -> str:  # never the password or token
        return f"PocketBaseClient({self.base_url!r})"

    # --- auth -------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": self._token} if self._token else {}

    def login(self) -> None:
        if self._fixed_token:
            self._token = self._fixed_token
            return
        if not (self._email and self._password):
            raise AuthenticationFailed(
                "no POCKETBASE_EMAIL/POCKETBASE_PASSWORD or POCKETBASE_TOKEN configured",
                service=self.service,
            )
        self._token = ""
        try:
            response = super().request(
                "POST",
                "/api/collections/_superusers/auth-with-password",
                idempotent=True,
                json={"identity": self._email, "password": self._password},
            )
        except BadRequest as error:  # PocketBase says 400 "Failed to authenticate."
            raise AuthenticationFailed(
                f"superuser login failed: {error.message}",
                service=self.service,
                status=400,
            ) from None
        self._token = response.json()["token"]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not self._token:
            self.login()
        try:
            return super().request(method, path, **kwargs)
        except (AuthenticationFailed, PermissionDenied) as error:
            if self._fixed_token or (
                isinstance(error, PermissionDenied) and "Only superusers" not in error.message
            ):
                raise
            self.login()  # the token expired or was revoked: log in again, once
            return super().request(method, path, **kwargs)

    # --- health and schema ------------------------------------------------------------------

    def healthy(self) -> bool:
        response = super().request("GET", "/api/health", idempotent=True)
        return response.json().get("code") == 200

    def ensure_collection(self) -> bool:
        """Create `agent_stacks` if missing, add any missing field; True if anything changed."""
        try:
            existing = self.request("GET", f"/api/collections/{COLLECTION}", idempotent=True).json()
        except NotFound:
            try:
                self.request("POST", "/api/collections", idempotent=False, json=AGENT_STACKS_SCHEMA)
            except BadRequest as refused:
                # Another writer created it since our look (or our own earlier create that timed
                # out went through): then the collection is there and this was no refusal.
                try:
                    existing = self.request(
                        "GET", f"/api/collections/{COLLECTION}", idempotent=True
                    ).json()
                except NotFound:
                    raise refused from None
            else:
                self._collection_ready = True
                return True
        have = {f["name"] for f in existing.get("fields", [])}
        missing = [f for f in AGENT_STACKS_SCHEMA["fields"] if f["name"] not in have]
        if missing:
            self.request(
                "PATCH",
                f"/api/collections/{COLLECTION}",
                idempotent=True,
                json={"fields": [*existing["fields"], *missing]},
            )
        self._collection_ready = True
        return bool(missing)

    def _ready(self) -> None:
        if not self._collection_ready:
            self.ensure_collection()

    # --- records ----------------------------------------------------------------------------

    def find_record(self, tenant: str, stack_name: str) -> dict[str, Any] | None:
        self._ready()
        query = f"tenant = {filter_literal(tenant)} && stack_name = {filter_literal(stack_name)}"
        items = self.request(
            "GET",
            f"/api/collections/{COLLECTION}/records",
            idempotent=True,
            params={"filter": query, "perPage": 1, "skipTotal": 1},
        ).json()["items"]
        return items[0] if items else None

    def list_records(self, *, tenant: str | None = None) -> list[dict[str, Any]]:
        self._ready()
        params: dict[str, Any] = {"perPage": 500, "sort": "tenant,stack_name", "page": 1}
        if tenant is not None:
            params["filter"] = f"tenant = {filter_literal(tenant)}"
        records: list[dict[str, Any]] = []
        while True:
            page = self.request(
                "GET", f"/api/collections/{COLLECTION}/records", idempotent=True, params=params
            ).json()
            records += page["items"]
            if params["page"] >= page.get("totalPages", 1):
                return records
            params["page"] += 1

    def upsert_record(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create or update the record of (tenant, stack_name); returns it (with its id)."""
        unknown = set(data) - RECORD_FIELDS
        if unknown:  # PocketBase would drop them silently; a caller bug must not pass
            raise ValueError(f"not fields of {COLLECTION}: {sorted(unknown)}")
        existing = self.find_record(data["tenant"], data["stack_name"])
        if existing is not None:
            return self._patch(existing["id"], data)
        try:
            return self.request(
                "POST", f"/api/collections/{COLLECTION}/records", idempotent=False, json=data
            ).json()
        except BadRequest as error:
            if "validation_not_unique" not in str(error.field_errors):
                raise
            # Someone created it between our look and our create: update that one.
            existing = self.find_record(data["tenant"], data["stack_name"])
            if existing is None:
                raise
            return self._patch(existing["id"], data)

    def _patch(self, record_id: str, data: dict[str, Any]) -> dict[str, Any]:
        return self.request(
            "PATCH",
            f"/api/collections/{COLLECTION}/records/{record_id}",
            idempotent=True,
            json=data,
        ).json()

    def delete_record(self, record_id: str) -> bool:
        """True if it was deleted now, False if it was already gone."""
        self._ready()
        try:
            self.request(
                "DELETE",
                f"/api/collections/{COLLECTION}/records/{record_id}",
                idempotent=True,
                expect=(204,),
            )
        except NotFound:
            return False
        return True

    # --- backups (superusers only: GET and POST /api/backups, pocketbase.io/docs/api-backups) -

    def list_backups(self) -> list[dict[str, Any]]:
        """Every backup file, newest first: {"key": "x.zip", "size": bytes, "modified": text}.
        `modified` is PocketBase's UTC text ("2023-05-19 16:25:57.542Z")."""
        items = self.request("GET", "/api/backups", idempotent=True).json() or []
        backups = [
            {
                "key": str(item.get("key", "")),
                "size": int(item.get("size") or 0),
                "modified": str(item.get("modified", "")),
            }
            for item in items
        ]
        return sorted(backups, key=lambda b: b["modified"], reverse=True)

    def create_backup(self, name: str = "") -> str:
        """Make a backup of PocketBase's data now (204 when it is written); returns its name.

        PocketBase accepts names matching `[a-z0-9_-]+\\.zip` (at most 150 characters) and
        answers 400 while another backup or restore runs; without a name it picks
        `pb_backup_<timestamp>.zip`. Not retried: a second try would make a second backup.
        """
        if name and not BACKUP_NAME.fullmatch(name):
            raise ValueError(f"not a PocketBase backup name: {name!r}")
        self.request(
            "POST",
            "/api/backups",
            idempotent=False,
            json={"name": name} if name else {},
            expect=(200, 204),
        )
        return name


__all__ = ["AGENT_STACKS_SCHEMA", "COLLECTION", "ClientError", "PocketBaseClient", "filter_literal"]
