"""Names under which handlers receive what the app provides (Litestar injects by name)."""

from typing import TypeAlias

from litestar.di import NamedDependency
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
