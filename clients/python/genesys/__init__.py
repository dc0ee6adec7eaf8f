"""Genesys: a self-hosted platform where LLM agents discover LM block architectures."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genesys")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
