"""The method side's registries (methods, backbones, heads, losses, optimisers, schedulers): one place every
module registers into with ``@KIND.register(...)`` and ``python -m benchmark list`` reads."""

from __future__ import annotations

import functools
from typing import Any

from registry import Registry


class FallbackRegistry(Registry):
    """A registry whose unregistered names go to one fallback factory, called with the name first (timm backbones)."""

    def __init__(self, kind: str, fallback_label: str):
        super().__init__(kind)
        self.fallback_label = fallback_label  # what `list` shows for the names the fallback takes
        self.fallback: Any = None

    def register_fallback(self, factory):
        """Decorator: ``factory(name, **options)`` builds every name not registered."""
        self.fallback = factory
        return factory

    def get(self, name: str):
        if name in self or self.fallback is None:
            return super().get(name)
        return functools.partial(self.fallback, name)


METHODS = Registry("method")
BACKBONES = FallbackRegistry("backbone", "any timm model name")
HEADS = Registry("head")
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")
SCHEDULERS = Registry("scheduler")
