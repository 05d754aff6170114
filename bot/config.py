"""Settings from the environment and `.env`; read through get_settings(), never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ADMIN_PLATFORMS = ("slack", "teams", "console")
ADMINS_EXAMPLE = "slack:U123,teams:29:abc,console:carol"


class SettingsError(Exception):
    """A setting that cannot be right: one sentence naming it and the right form."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = "sqlite:///pilotbot.db"

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # Multiplies the Slack rate tiers the client paces to (adapters/slack/pacing.py). 1 for Slack;
    # more only where the API allows more (a fake in tests). 429s are honoured whatever it is.
    slack_rate_limit_factor: float = 1.0

    microsoft_app_id: str | None = None
    microsoft_app_password: SecretStr | None = None
    microsoft_app_tenant_id: str | None = None
    microsoft_app_type: str = "SingleTenant"
    teams_allow_anonymous: bool = False

    pilotbot_admins: str = ""
    pilotbot_timezone: str = "UTC"
    pilotbot_checkin_grace_hours: float = 48.0
    pilotbot_digest_channel: str = ""
    # Scheduled delivery (bot/schedule/).
    pilotbot_scheduler: bool = True
    pilotbot_tick_seconds: float = 30.0
    pilotbot_claim_lease_seconds: float = 300.0
    pilotbot_send_concurrency: int = 16

    host: str = "0.0.0.0"
    port: int = 3000

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins method names onto the base URL, which must end with "/".
        return value if value.endswith("/") else value + "/"

    @property
    def admins(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.pilotbot_admins.split(",") if a.strip())

    def check(self) -> None:
        """Raises SettingsError for settings that cannot be right (`serve` and `chat` stop on them)."""
        for entry in self.pilotbot_admins.split(","):
            entry = entry.strip()
            if not entry:
                continue
            platform, sep, user = entry.partition(":")
            if not sep or not user.strip() or not platform.strip():
                raise SettingsError(
                    f"PILOTBOT_ADMINS entry `{entry[:60]}` has no platform: write `<platform>:<user id>` with "
                    f"platform {', '.join(ADMIN_PLATFORMS)}, e.g. `console:{(platform or user).strip()[:40]}` "
                    f"or `{ADMINS_EXAMPLE}`."
                )
            if platform.strip().lower() not in ADMIN_PLATFORMS:
                raise SettingsError(
                    f"PILOTBOT_ADMINS entry `{entry[:60]}` names the unknown platform `{platform[:20]}`: "
                    f"use {', '.join(p + ':' for p in ADMIN_PLATFORMS)} as in `{ADMINS_EXAMPLE}`."
                )

    def sqlite_file(self) -> Path | None:
        """The database file when DATABASE_URL is a SQLite file (relative to the current folder)."""
        url = self.database_url
        if not url.startswith("sqlite:///") or url.endswith(":memory:"):
            return None
        path = url.removeprefix("sqlite:///").split("?", 1)[0]
        return Path(path).resolve() if path else None

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
