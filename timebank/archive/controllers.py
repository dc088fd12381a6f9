"""The export of a whole timebank over HTTP: one zip, streamed."""

from __future__ import annotations

from typing import TypeAlias

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.response import Stream

from timebank.archive.service import Archives
from timebank.deps import AccessDep
from timebank.openapi import problems

ArchivesDep: TypeAlias = NamedDependency[Archives]
ZIP = "application/zip"


class ArchiveController(Controller):
    path = "/api/v1/timebanks/{slug:str}"
    tags = ["archive"]

    @get(
        "/export",
        summary="Export the whole timebank",
        media_type=ZIP,
        responses=problems(401, 403, 404),
    )
    async def export(self, access: AccessDep, archives: ArchivesDep) -> Stream:
        """One zip of CSV files (the timebank and its policy, categories, participants,
        accounts, reservations, transfers, postings, limit changes, group sessions, exchanges,
        decisions, gifts, opening balances, departures, publications) and a ``manifest.json``
        with each file's rows and SHA-256: what ``timebank import archive`` restores.
        Coordinators and admins; no user, password or token is in it."""
        archives.may_export(access)
        name = f"{access.timebank_slug}-archive.zip"
        return Stream(
            archives.export(access.timebank_slug),
            media_type=ZIP,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


ROUTES: list = [ArchiveController]
