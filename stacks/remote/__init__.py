"""The remote side: clients for Coolify and PocketBase built from settings, the shared status
cache, the PocketBase record mapping and the outbox that delivers it (`stacks.remote.outbox`)."""

from stacks.remote.clients import Remote, get_coolify, get_pocketbase, get_remote
from stacks.remote.records import pocketbase_record
from stacks.remote.status_cache import StatusRead, service_statuses

__all__ = [
    "Remote",
    "StatusRead",
    "get_coolify",
    "get_pocketbase",
    "get_remote",
    "pocketbase_record",
    "service_statuses",
]
