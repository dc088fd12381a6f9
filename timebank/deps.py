"""Names under which handlers receive what the app provides (Litestar injects by name)."""

from typing import Any, TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.auth.deps import Credentials
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.auth.service import AuthService
from timebank.ledger import Ledger
from timebank.settings import Settings

AuthDep: TypeAlias = NamedDependency[AuthService]
PrincipalDep: TypeAlias = NamedDependency[Principal]
AccessDep: TypeAlias = NamedDependency[TimebankAccess]
CredentialsDep: TypeAlias = NamedDependency[Credentials]
LedgerDep: TypeAlias = NamedDependency[Ledger]
SettingsDep: TypeAlias = NamedDependency[Settings]
EngineDep: TypeAlias = NamedDependency[AsyncEngine]


def once_let_in(service: str) -> Provide:
    """The service the app built at startup as ``state.<service>``, handed out once ``access``
    is resolved: a handler's dependencies then resolve one after another (Litestar resolves
    dependencies that do not depend on each other concurrently, in a task group per request),
    and nobody gets the service before they are let in."""

    def provide(state: State, access: AccessDep) -> Any:
        return state[service]

    return Provide(provide, sync_to_thread=False)
