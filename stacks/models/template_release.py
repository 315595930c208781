"""Every template version cfadmin has deployed or shipped (issue 17): the manifest and compose
text by version, so a rollout can deploy a version and a rollback can deploy the one before,
whatever the files on disk say now."""

from __future__ import annotations

from typing import Any

from django.db import models


class TemplateRelease(models.Model):
    """One version of one template: its files' text as they were (the version hashes them)."""

    template_name = models.CharField(max_length=64)
    version = models.CharField(max_length=64)
    manifest_text = models.TextField()
    compose_text = models.TextField()
    first_seen_at = models.DateTimeField(auto_now_add=True)
    # Set while a rollout owns this version (ops.rollouts): a plain deploy or redeploy of a
    # stack on another stored version keeps that one instead of taking this version behind the
    # rollout's gates (and a rolled-back stack does not get it again by a click).
    held_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["template_name", "-first_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["template_name", "version"],
                name="template_release_unique",
                violation_error_message="This template version is stored already.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.template_name} {self.version}"

    @classmethod
    def store(cls, template_name: str, manifest_text: str, compose_text: str) -> TemplateRelease:
        """Keep a version of a template's files, under the version their text hashes to."""
        from stacks.compose.manifest import parse_release, release_version

        version = release_version(manifest_text, compose_text)
        parse_release(template_name, version, manifest_text, compose_text)  # TemplateError
        release, _ = cls.objects.get_or_create(
            template_name=template_name,
            version=version,
            defaults={"manifest_text": manifest_text, "compose_text": compose_text},
        )
        return release


def record_release(template_name: str) -> tuple[TemplateRelease, bool]:
    """Store the on-disk version of one template; (the release, whether it is new)."""
    from stacks.compose import load_manifest, template_files

    version = load_manifest(template_name).version
    manifest_text, compose_text = template_files(template_name)
    # get_or_create re-reads after an IntegrityError: two workers storing it at once is fine.
    return TemplateRelease.objects.get_or_create(
        template_name=template_name,
        version=version,
        defaults={"manifest_text": manifest_text, "compose_text": compose_text},
    )


def record_current_releases() -> int:
    """Store the on-disk version of every template (after migrate, and by each deploy's render
    step for its own): the versions cfadmin ships are the ones it can roll back to later.
    Returns how many were new."""
    from stacks.catalog import template_names

    return sum(record_release(name)[1] for name in template_names())


def record_after_migrate(using: str = "default", **_signal: Any) -> None:
    """post_migrate receiver (stacks/apps.py): record the releases once the table exists (a
    migration back to before it leaves nothing to record into)."""
    from django.db import connections

    if TemplateRelease._meta.db_table in connections[using].introspection.table_names():
        record_current_releases()
