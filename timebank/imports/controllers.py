"""Imports over JSON: a coordinator uploads a CSV file and gets the check report."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from timebank.deps import AccessDep
from timebank.imports.schemas import MAX_UPLOAD_BYTES, ImportReportPublic, ImportUpload
from timebank.imports.service import Imports
from timebank.openapi import problems

ImportsDep: TypeAlias = NamedDependency[Imports]


class ImportsController(Controller):
    path = "/api/v1/timebanks/{slug:str}"
    tags = ["imports"]

    @post(
        "/imports",
        summary="Import people or history from a CSV file",
        status_code=HTTP_201_CREATED,
        request_max_body_size=MAX_UPLOAD_BYTES,
        responses={
            200: ResponseSpec(
                data_container=ImportReportPublic,
                description="A dry run, or a file whose rows were all there already: the report",
            ),
            **problems(400, 401, 403, 404, 413, 422),
        },
    )
    async def create(
        self,
        access: AccessDep,
        imports: ImportsDep,
        data: Annotated[ImportUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[ImportReportPublic]:
        """Check a CSV file of people or history, and import it unless it is a dry run.

        The file is checked whole first. A dry run answers the report (200); a good file is
        imported in one transaction and answered 201 (200 when every row was already there).
        A file with any bad row is refused (422) with every bad row in ``errors``, each with
        its ``line`` and ``column``, and nothing is written, unless ``good_rows_only`` asks
        for the good rows alone. Coordinators of the timebank and admins only."""
        content = await data.file.read()
        report = await imports.run(
            access.timebank_slug,
            data.kind,
            content,
            dry_run=data.dry_run,
            good_rows_only=data.good_rows_only,
            access=access,
            apply_reports=False,  # the service's background applier keeps the reports current
        )
        status = HTTP_201_CREATED if report.written else HTTP_200_OK
        return Response(ImportReportPublic.of(report), status_code=status)


ROUTES: list = [ImportsController]
