"""User-facing provider configurations and what they provision with."""

from skyward.infra.providers.local import Local

__all__ = ["Local"]
