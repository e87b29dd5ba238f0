"""Prompt templates: named sets in prompts/templates/, explicit lists, `{}` or `{c}` placeholders."""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from pathlib import Path

from zsvl.errors import InvalidParameterError
from zsvl.paths import prompts_dir

__all__ = ["load_templates", "list_template_sets", "format_prompt", "format_prompts"]

_PLACEHOLDERS = ("{c}", "{}")

TemplatesLike = str | Sequence[str] | Path


def list_template_sets() -> list[str]:
    """Names accepted by :func:`load_templates` (``coop:<dataset>`` for each CoOp dataset)."""
    names = []
    for path in sorted((prompts_dir() / "templates").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "per_dataset" in data:
            names += [f"{path.stem}:{key}" for key in data["per_dataset"]]
        else:
            names.append(path.stem)
    return names


def load_templates(templates: TemplatesLike) -> tuple[str, ...]:
    """Resolve a template set name, a JSON file, or an explicit list into validated templates."""
    if isinstance(templates, Path) or (
        isinstance(templates, str) and templates.endswith(".json") and Path(templates).is_file()
    ):
        return _validate(_from_json(Path(templates), None), str(templates))
    if isinstance(templates, str):
        if any(p in templates for p in _PLACEHOLDERS):
            return _validate([templates], "the template")
        return _validate(_named(templates), templates)
    if isinstance(templates, Sequence) and templates and all(isinstance(t, str) for t in templates):
        return _validate(list(templates), "the template list")
    raise InvalidParameterError(
        f"templates must be a set name ({', '.join(list_template_sets()[:4])}, ...), a JSON file, "
        f"or a non-empty list of strings with a '{{}}' or '{{c}}' placeholder. Got {templates!r}."
    )


def _named(name: str) -> list[str]:
    stem, _, key = name.partition(":")
    path = prompts_dir() / "templates" / f"{stem}.json"
    if not path.is_file():
        raise InvalidParameterError(
            f"Unknown template set {name!r}. Known sets: {', '.join(list_template_sets())}."
        )
    return _from_json(path, key or None)


def _from_json(path: Path, key: str | None) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if "per_dataset" in data:
        table = data["per_dataset"]
        if key not in table:
            raise InvalidParameterError(
                f"{path.name} holds one set per dataset; name one as '{path.stem}:<dataset>' with "
                f"<dataset> in {', '.join(table)}. Got {key!r}."
            )
        return list(table[key])
    if "source" in data:
        return _from_module(data["source"])
    if "templates" in data:
        return list(data["templates"])
    raise InvalidParameterError(
        f"{path} has none of the keys 'templates', 'source', 'per_dataset'."
    )


def _from_module(source: str) -> list[str]:
    """Templates shipped by a dependency as strings or one-argument callables (open_clip)."""
    module_name, _, attr = source.partition(":")
    entries = getattr(importlib.import_module(module_name), attr)
    return [entry("{}") if callable(entry) else str(entry) for entry in entries]


def _validate(templates: list[str], where: str) -> tuple[str, ...]:
    if not templates:
        raise InvalidParameterError(f"{where} holds no templates.")
    for template in templates:
        count = sum(template.count(p) for p in _PLACEHOLDERS)
        if count != 1:
            raise InvalidParameterError(
                f"Each template needs exactly one '{{}}' or '{{c}}' placeholder for the class name; "
                f"{template!r} in {where} has {count}."
            )
    return tuple(templates)


def format_prompt(template: str, classname: str) -> str:
    """Fill a template with a class name; underscores in the name become spaces (CoOp)."""
    name = classname.replace("_", " ")
    for placeholder in _PLACEHOLDERS:
        if placeholder in template:
            return template.replace(placeholder, name)
    raise InvalidParameterError(f"Template {template!r} has no '{{}}' or '{{c}}' placeholder.")


def format_prompts(templates: Sequence[str], classnames: Sequence[str]) -> list[str]:
    """All prompts, class-major: index ``c * len(templates) + t``."""
    return [format_prompt(t, c) for c in classnames for t in templates]
