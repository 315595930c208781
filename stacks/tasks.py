"""django-q2 tasks: load by primary key, call one service. Arguments are pks, never objects."""

from __future__ import annotations

from stacks import provisioning, services


def run_operation_task(operation_id: int) -> bool:
    return provisioning.run_operation(operation_id)


def recover_stale_operations_task() -> dict[str, list[int]]:
    return provisioning.recover_stale_operations(enqueue=services.enqueue_operation)
