"""Volumes a delete kept on the server (delete_volumes=false), for data recovery: which ones,
from which Coolify service, and which later stack was deployed onto them."""

from __future__ import annotations

from django.db import models

from stacks.compose import coolify_slug, load_manifest, volume_name
from stacks.models.stack import Stack


class KeptVolumes(models.Model):
    """A deleted stack's named volumes, left on the server by a "keep volumes" delete.

    `volumes` holds the server names (`<service uuid>_<slug>`, bootstrap/helpers/parsers.php);
    `reused_by` is the stack redeployed onto them (at most one: two stacks must not share data).
    """

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="kept_volumes")
    service_uuid = models.CharField("Coolify service uuid", max_length=64)
    volumes = models.JSONField(default=list, help_text="Docker volume names on the server.")
    kept_at = models.DateTimeField(auto_now_add=True)
    reused_by = models.ForeignKey(
        Stack,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reused_volumes",
    )

    class Meta:
        ordering = ["-kept_at", "-id"]
        verbose_name_plural = "kept volumes"
        constraints = [
            models.UniqueConstraint(
                fields=["stack", "service_uuid"], name="kept_volumes_once_per_service"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stack}: {len(self.volumes)} kept volume(s)"

    @property
    def is_reused(self) -> bool:
        return self.reused_by_id is not None

    def by_purpose(self) -> dict[str, str]:
        """The template's volume purpose (`models`, `webui`…) -> the kept server volume name.

        Matched by `_<slug>` rather than this service's uuid: a stack that was itself
        redeployed onto kept volumes passes those older volumes on."""
        stack = self.stack
        manifest = load_manifest(stack.template_name)
        found = {}
        for spec in manifest.services.values():
            for purpose in spec.volumes:
                slug = coolify_slug(volume_name(stack.tenant.slug, stack.stack_name, purpose))
                name = next((v for v in self.volumes if v.endswith(f"_{slug}")), None)
                if name is not None:
                    found[purpose] = name
        return found


def stack_volumes(stack: Stack) -> list[str]:
    """The Docker volumes a stack's containers use: its own `<uuid>_<slug>` ones, except that a
    stack redeployed onto kept volumes uses those for the purposes they cover."""
    own = stack.server_names().volumes
    reused = stack.reused_volumes.first()
    if reused is None:
        return own
    taken = reused.by_purpose()
    ends = tuple(
        f"_{coolify_slug(volume_name(stack.tenant.slug, stack.stack_name, purpose))}"
        for purpose in taken
    )
    return [*taken.values(), *(name for name in own if not name.endswith(ends))]
