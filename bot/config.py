"""Settings from the environment and `.env`; read through get_settings(), never at import."""

from __future__ import annotations

from functools import lru_cache

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    # Scheduled delivery (bot/duework.py, bot/delivery.py).
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

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
