"""Stack templates: manifests (manifest), the names a stack gets here and on the server
(naming), safe rendering (render), the hardening audit (audit, report). Import from here."""

from stacks.compose.audit import RULES, Finding, audit_compose, audit_service
from stacks.compose.errors import RenderError, TemplateError
from stacks.compose.manifest import (
    COMPOSE_FILE,
    VERSION_LENGTH,
    Manifest,
    ServiceSpec,
    all_manifests,
    load_manifest,
    manifest_for,
    parse_release,
    template_files,
)
from stacks.compose.naming import (
    DNS_LABEL_MAX,
    LABEL_PREFIX,
    UUID_PLACEHOLDER,
    ServerNames,
    compose_name_problem,
    compose_service_name,
    compose_service_names,
    coolify_slug,
    server_names,
    service_key_for,
    stack_labels,
    volume_name,
)
from stacks.compose.render import (
    SAMPLE_STACK,
    SAMPLE_TENANT,
    EnvReference,
    RenderedStack,
    check_structure,
    render_sample,
    render_stack,
)
from stacks.compose.report import audit_report
from stacks.compose.strict_yaml import UniqueKeyLoader, parse_compose

__all__ = [
    "COMPOSE_FILE",
    "DNS_LABEL_MAX",
    "LABEL_PREFIX",
    "RULES",
    "SAMPLE_STACK",
    "SAMPLE_TENANT",
    "UUID_PLACEHOLDER",
    "VERSION_LENGTH",
    "EnvReference",
    "Finding",
    "Manifest",
    "RenderError",
    "RenderedStack",
    "ServerNames",
    "ServiceSpec",
    "TemplateError",
    "UniqueKeyLoader",
    "all_manifests",
    "audit_compose",
    "audit_report",
    "audit_service",
    "check_structure",
    "compose_name_problem",
    "compose_service_name",
    "compose_service_names",
    "coolify_slug",
    "load_manifest",
    "manifest_for",
    "parse_compose",
    "parse_release",
    "render_sample",
    "render_stack",
    "server_names",
    "service_key_for",
    "stack_labels",
    "template_files",
    "volume_name",
]
