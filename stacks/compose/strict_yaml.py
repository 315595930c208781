"""Strict YAML for templates: loading refuses duplicate keys, and `written` says how a rendered
value appears in the parsed compose file."""

from __future__ import annotations

from typing import Any

import yaml

from stacks.compose.errors import RenderError


class UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses duplicate keys (plain safe_load silently keeps the last one)."""


def _construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def parse_compose(text: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise RenderError(f"rendered compose is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise RenderError("rendered compose has no 'services' mapping")
    return data


def written(value: str) -> str:
    """A string as the renderer writes it (`$` doubled), so as the parsed compose holds it."""
    return value.replace("$", "$$")
