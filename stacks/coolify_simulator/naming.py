"""Names Coolify gives to containers, labels and volumes (bootstrap/helpers/parsers.php)."""

from __future__ import annotations

import re
import unicodedata

# bootstrap/helpers/constants.php:42 DATABASE_DOCKER_IMAGES (compared by base name).
DATABASE_DOCKER_IMAGES = (
    "bitnami/mariadb",
    "bitnami/mongodb",
    "bitnami/redis",
    "bitnamilegacy/mariadb",
    "bitnamilegacy/mongodb",
    "bitnamilegacy/redis",
    "bitnamisecure/mariadb",
    "bitnamisecure/mongodb",
    "bitnamisecure/redis",
    "mysql",
    "bitnami/mysql",
    "bitnamilegacy/mysql",
    "bitnamisecure/mysql",
    "mysql/mysql-server",
    "mariadb",
    "postgis/postgis",
    "postgres",
    "bitnami/postgresql",
    "bitnamilegacy/postgresql",
    "bitnamisecure/postgresql",
    "supabase/postgres",
    "elestio/postgres",
    "mongo",
    "redis",
    "memcached",
    "couchdb",
    "neo4j",
    "influxdb",
    "clickhouse/clickhouse-server",
    "timescaledb/timescaledb",
    "timescaledb",
    "timescaledb-ha",
    "pgvector/pgvector",
)
_DATABASE_BASE_NAMES = frozenset(image.rsplit("/", 1)[-1] for image in DATABASE_DOCKER_IMAGES)


def ascii_fold(value: str) -> str:
    """Str::ascii (voku/portable-ascii), approximated: NFKD and drop what is not ASCII."""
    folded = unicodedata.normalize("NFKD", value)
    return "".join(c for c in folded if ord(c) < 128)


def slug(title: str, separator: str = "-") -> str:
    """Illuminate\\Support\\Str::slug($title, $separator, 'en', ['@' => 'at'])."""
    title = ascii_fold(title)
    flip = "_" if separator == "-" else "-"
    # Convert all dashes/underscores into separator
    title = re.sub(f"[{re.escape(flip)}]+", separator, title)
    # Replace dictionary words: '@' → '-at-'
    title = title.replace("@", f"{separator}at{separator}")
    # Remove all characters that are not the separator, letters, numbers, or whitespace
    title = re.sub(rf"[^{re.escape(separator)}a-zA-Z0-9\s]+", "", title.lower())
    # Replace all separator characters and whitespace by a single separator
    title = re.sub(rf"[{re.escape(separator)}\s]+", separator, title)
    return title.strip(separator)


def container_name(compose_service: str, service_uuid: str) -> str:
    # parsers.php:2080 `$containerName = "$serviceName-{$resource->uuid}"` — the raw compose
    # key, never slugged; it replaces any `container_name:` of the compose (parsers.php:2720).
    return f"{compose_service}-{service_uuid}"


def container_label(compose_service: str, service_uuid: str) -> str:
    # docker.php:401 `coolify.name=Str::slug($containerName)` — the label IS slugged.
    return slug(container_name(compose_service, service_uuid))


def volume_name(service_uuid: str, source: str) -> str:
    # parsers.php:2253-2254 `$name = "{$uuid}_".Str::slug($source, '-')`.
    return f"{service_uuid}_{slug(source, '-')}"


def is_bind_source(source: str) -> bool:
    # shared.php:1642: local paths start with `./`, `/`, `~` or `..`.
    return source.startswith(("./", "/", "~", ".."))


def bind_source(service_uuid: str, source: str) -> str:
    # shared.php:1651: the first leading `.` or `~` becomes the service directory; a trailing
    # `/` goes; /var/run/docker.sock and /tmp pass through; absolute paths stay.
    if source in ("/var/run/docker.sock", "/tmp") or source.startswith("/"):
        return source.rstrip("/") or "/"
    base = f"/data/coolify/services/{service_uuid}"
    if source.startswith(("./", "..", "~")):
        source = base + source[1:]
    return source.rstrip("/")


def is_database_image(image: str | None) -> bool:
    # docker.php:1024 isDatabaseImage(): base image name (no registry, no tag) in
    # DATABASE_DOCKER_IMAGES. The application-pattern exceptions (:1077) are not modelled.
    if not image:
        return False
    name = image if ":" in image else f"{image}:latest"
    base = name.split(":", 1)[0].rsplit("/", 1)[-1]
    return base in _DATABASE_BASE_NAMES
