"""Key providers: where an agency's signing key lives (PKCS#12 file, PKCS#11 token)."""

from .base import KeyProvider, KeySpec, open_key_provider

__all__ = ["KeyProvider", "KeySpec", "open_key_provider"]
