"""The REST API for CI and dashboards (SPEC §6): `/api/v1/...`, bearer tokens, JSON in and out."""

from adapters.api.app import build_api_app, mount

__all__ = ["build_api_app", "mount"]
