"""Named model specs (aliases such as "toy") and the listing behind `zsvl models`."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from zsvl.errors import ModelNotFoundError
from zsvl.models.spec import ModelSpec, SpecLike, parse_spec

__all__ = ["ModelRegistry", "REGISTRY", "list_models", "resolve_spec"]


class ModelRegistry:
    """Aliases -> factories of :class:`ModelSpec`. Factories run at resolve time (lazy files)."""

    def __init__(self) -> None:
        self._factories: dict[str, Callable[[], ModelSpec]] = {}

    def register(self, name: str, factory: Callable[[], ModelSpec] | ModelSpec) -> None:
        """Add an alias. ``factory`` is a spec or a zero-argument callable returning one."""
        if isinstance(factory, ModelSpec):
            spec = factory
            self._factories[name] = lambda: spec
        else:
            self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> ModelSpec:
        if name not in self._factories:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ModelNotFoundError(f"No registered model named {name!r}.{hint}")
        return self._factories[name]()

    def resolve(self, spec: SpecLike) -> ModelSpec:
        """Parse ``spec``, replacing a registered alias by its spec."""
        if isinstance(spec, str) and spec.strip() in self._factories:
            return self.get(spec.strip())
        return parse_spec(spec, alias_names=self.names())

    def copy(self) -> ModelRegistry:
        """An independent registry with the same aliases (for tests)."""
        new = ModelRegistry()
        new._factories = dict(self._factories)
        return new


def _toy_spec() -> ModelSpec:
    from zsvl.toy.model import TOY_MODEL_NAME, register_toy_config, toy_checkpoint_path

    register_toy_config()
    return ModelSpec(
        arch=TOY_MODEL_NAME, checkpoint=toy_checkpoint_path(), default_templates="single"
    )


REGISTRY = ModelRegistry()
REGISTRY.register("toy", _toy_spec)


def resolve_spec(spec: SpecLike) -> ModelSpec:
    """Resolve a spec through the default registry."""
    return REGISTRY.resolve(spec)


def list_models(*, pretrained: bool = True) -> list[str]:
    """Known model specs: zsvl's aliases, then every open_clip ``ARCH:TAG`` pair."""
    names = REGISTRY.names()
    if pretrained:
        import open_clip

        names += [f"{arch}:{tag}" for arch, tag in open_clip.list_pretrained()]
    return names
