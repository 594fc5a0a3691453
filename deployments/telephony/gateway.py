"""What every phone platform's routes share: the replica's parts and the tenants' settings."""

from __future__ import annotations

from s2s.service.config import ServiceConfig
from s2s.service.state import SessionStore
from s2s.service.subscribe import SubscriptionHub
from s2s.service.telephony_config import TelephonySettings

from ..creation import SessionCreator
from ..router import SessionRouter
from ..tenancy import Authenticator
from .calls import CallTokens

__all__ = ["Gateway"]


class Gateway:
    """A platform's routes on one ingress replica (Twilio's, Genesys')."""

    def __init__(
        self,
        config: ServiceConfig,
        auth: Authenticator,
        creator: SessionCreator,
        router: SessionRouter,
        hub: SubscriptionHub,
        store: SessionStore,
        tokens: CallTokens,
    ) -> None:
        self.config = config
        self.auth = auth
        self.creator = creator
        self.router = router
        self.hub = hub
        self.store = store
        self.tokens = tokens

    def telephony(self, tenant: str) -> TelephonySettings | None:
        """The tenant's phone settings (None: unknown tenant, or it takes no calls)."""
        settings = self.auth.tenants.get(tenant)
        return settings.telephony if settings is not None else None
