"""The coordinators' upload page: choose a CSV file of people or history, see the check (every
bad row beside its line), then confirm to import it, or, explicitly, its good rows only. The
page calls the same service as the API (``timebank.imports.service.Imports``); the file
checked travels back with the confirming form, and is checked again, whole, as it is
imported."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from timebank.errors import Forbidden
from timebank.imports.report import FileRefused, ImportKind, ImportReport
from timebank.imports.schemas import MAX_UPLOAD_BYTES
from timebank.imports.service import Imports, require_importer
from timebank.web.deps import PageDep
from timebank.web.render import TimebankPage, redirect

ImportsDep: TypeAlias = NamedDependency[Imports]
KINDS: dict[str, str] = {"people": "People", "history": "Past exchanges (history)"}
# The form's other fields beside the file.
FORM_ALLOWANCE = 64 * 1024


async def _file(sent: FormMultiDict) -> bytes | None:
    """The file chosen, or the text of the file checked (sent back by the confirming form)."""
    upload = sent.get("file")
    if isinstance(upload, UploadFile):
        data = await upload.read()
        return data or None
    content = sent.get("content")
    return content.encode() if isinstance(content, str) and content else None


async def _page(
    page: TimebankPage,
    *,
    kind: str = "people",
    errors: dict[str, str] | None = None,
    report: ImportReport | None = None,
    content: str = "",
    status_code: int = 200,
    imported: int | None = None,
) -> Response:
    problems = sorted(report.problems) if report is not None else []
    return await page.render(
        "imports.html",
        kinds=KINDS,
        kind=kind,
        errors=errors or {},
        report=report,
        problems=problems,
        content=content,
        imported=imported,
        status_code=status_code,
    )


class ImportPages(Controller):
    path = "/t/{slug:str}"

    @get("/imports")
    async def imports_form(
        self,
        page: PageDep,
        imported: Annotated[int | None, QueryParameter(ge=0, le=10**9)] = None,
        kind: Annotated[str | None, QueryParameter(max_length=10)] = None,
    ) -> Response:
        """Choose a file of people or history to check (coordinators)."""
        require_importer(page.access)
        shown = kind if kind in KINDS else "people"
        return await _page(page, kind=shown, imported=imported)

    @post("/imports", request_max_body_size=MAX_UPLOAD_BYTES + FORM_ALLOWANCE)
    async def check_or_import(self, page: PageDep, imports: ImportsDep) -> Response:
        """Check the file chosen and show what importing it would do; with ``action=import``
        (the confirming form), import it."""
        access = page.access
        if not access.can_manage:
            raise Forbidden("only a coordinator of this timebank (or an admin) can import")
        sent = await page.request.form()
        kind_sent = sent.get("kind")
        kind: ImportKind | None = (
            "people" if kind_sent == "people" else "history" if kind_sent == "history" else None
        )
        data = await _file(sent)
        errors: dict[str, str] = {}
        if kind is None:
            errors["kind"] = "Say whether the file holds people or past exchanges."
        if data is None:
            errors["file"] = "Choose a CSV file to check."
        if kind is None or data is None:
            return await _page(page, errors=errors, status_code=422)
        confirmed = sent.get("action") == "import"
        good_rows_only = confirmed and sent.get("good_rows_only") == "yes"
        try:
            report = await imports.run(
                access.timebank_slug,
                kind,
                data,
                dry_run=not confirmed,
                good_rows_only=good_rows_only,
                access=access,
            )
        except FileRefused as refused:
            if refused.report is None:  # not read: nothing to offer but choosing another
                return await _page(page, kind=kind, report=_unread(kind, refused), status_code=422)
            text = data.decode("utf-8-sig")
            return await _page(
                page, kind=kind, report=refused.report, content=text, status_code=422
            )
        if confirmed:
            return redirect(f"/t/{access.timebank_slug}/imports", imported=report.new, kind=kind)
        text = data.decode("utf-8-sig")
        return await _page(page, kind=kind, report=report, content=text)


def _unread(kind: ImportKind, refused: FileRefused) -> ImportReport:
    """A report of a file refused before its rows were read (its encoding, its headers)."""
    report = ImportReport(kind, "unknown", dry_run=True)
    report.problems = list(refused.problems)
    return report
