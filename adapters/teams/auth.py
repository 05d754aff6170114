"""Settings -> the configuration object botbuilder's authentication reads.

`ConfigurationBotFrameworkAuthentication` looks for UPPER-CASE attributes (APP_ID, APP_PASSWORD,
APP_TYPE, APP_TENANTID) with getattr: a settings object with lower-case names silently yields an
anonymous, unauthenticated bot. This module is the one place that maps our settings onto them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.config import Settings

APP_TYPES = {"singletenant": "SingleTenant", "multitenant": "MultiTenant", "userassignedmsi": "UserAssignedMSI"}
ANONYMOUS_APP_ID = "pilotbot-anonymous"  # CloudAdapter wants some bot_app_id for proactive turns
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class TeamsConfigError(Exception):
    """The Teams settings cannot work; the message is one sentence naming the setting to fix."""


@dataclass(frozen=True)
class BotAuthConfig:
    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str

    @property
    def anonymous(self) -> bool:
        return not self.APP_ID

    @property
    def bot_app_id(self) -> str:
        return self.APP_ID or ANONYMOUS_APP_ID


def auth_config(settings: Settings) -> BotAuthConfig:
    """Validates the combination up front so `serve` fails with a sentence, not a botbuilder traceback."""
    app_id = (settings.microsoft_app_id or "").strip()
    password = settings.microsoft_app_password.get_secret_value() if settings.microsoft_app_password else ""
    tenant = (settings.microsoft_app_tenant_id or "").strip()
    if not app_id:
        # No app id: botbuilder's auth-disabled path exists only for MultiTenant credentials.
        return BotAuthConfig(APP_ID="", APP_PASSWORD="", APP_TYPE="MultiTenant", APP_TENANTID="")
    app_type = APP_TYPES.get(settings.microsoft_app_type.strip().lower())
    if app_type is None:
        raise TeamsConfigError(
            f"MICROSOFT_APP_TYPE must be SingleTenant, MultiTenant or UserAssignedMSI, "
            f"not `{settings.microsoft_app_type[:40]}`."
        )
    if app_type in ("SingleTenant", "UserAssignedMSI") and not tenant:
        raise TeamsConfigError(f"MICROSOFT_APP_TENANT_ID is required when MICROSOFT_APP_TYPE is {app_type}.")
    if app_type != "UserAssignedMSI" and not password:
        raise TeamsConfigError(f"MICROSOFT_APP_PASSWORD is required when MICROSOFT_APP_TYPE is {app_type}.")
    return BotAuthConfig(APP_ID=app_id, APP_PASSWORD=password, APP_TYPE=app_type, APP_TENANTID=tenant)


def teams_mode(settings: Settings) -> str:
    """ "auth" (app id set), "anonymous" (TEAMS_ALLOW_ANONYMOUS=true, no app id) or "off"."""
    if (settings.microsoft_app_id or "").strip():
        return "auth"
    return "anonymous" if settings.teams_allow_anonymous else "off"
