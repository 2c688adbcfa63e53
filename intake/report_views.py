"""`/reports`: the funder's report of a month on a page (tables and SVG charts) and its
audited CSV or JSON download; coordinators only."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, Response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core import audit
from core.auth import roles_required
from core.clock import now as clock_now
from core.config import get_settings
from core.db import get_session
from core.models import Role
from core.nav import NavItem, register_nav
from intake.reports import (
    ALL,
    HIDDEN_TEXT,
    SMALL_TEXT,
    BadReportRequest,
    Report,
    Row,
    month_of,
    report_for,
    to_csv,
    to_json,
)

bp = Blueprint("reports", __name__, url_prefix="/reports")
CHART_WIDTH = 100  # percent units of the bars' scale


@dataclass(frozen=True)
class Bar:
    category: str
    value: str
    width: float  # 0-100; 0 for a hidden or small count (it is not drawn)


@dataclass(frozen=True)
class MeasureTable:
    code: str
    categories: list[str]
    cells: dict[tuple[str, str], str]  # (province, category) -> shown value
    bars: list[Bar]  # the ALL row, as a chart


def _tables(report: Report) -> list[MeasureTable]:
    tables = []
    for code in report.measures():
        rows = [row for row in report.rows if row.measure == code]
        categories = list(dict.fromkeys(row.category for row in rows))
        cells = {(row.province, row.category): row.value for row in rows}
        chart_row = ALL if ALL in report.provinces else report.provinces[0]
        tables.append(MeasureTable(code, categories, cells, _bars(rows, chart_row)))
    return tables


def _bars(rows: list[Row], province: str) -> list[Bar]:
    shown = [row for row in rows if row.province == province]
    top = max((row.number or 0 for row in shown), default=0) or 1
    return [Bar(row.category, row.value, (row.number or 0) * CHART_WIDTH / top) for row in shown]


def _request_report() -> tuple[Report | None, str, str, str | None]:
    month = request.args.get("month", "").strip() or month_of(clock_now())
    province = request.args.get("province", "").strip().upper() or None
    try:
        made = report_for(get_session(), month, get_settings().provinces, province)
    except BadReportRequest:
        return (
            None,
            month,
            province or "",
            _("Choose a month (YYYY-MM) and a province of the project."),
        )
    return made, month, province or "", None


@bp.get("")
@roles_required(Role.COORDINATOR)
def report_page() -> tuple[str, int] | str:
    made, month, province, error = _request_report()
    page = render_template(
        "intake/reports.html",
        report=made,
        tables=_tables(made) if made else [],
        month=month,
        province=province,
        provinces=get_settings().provinces,
        error=error,
        small=SMALL_TEXT,
        hidden=HIDDEN_TEXT,
    )
    return (page, 400) if error else page


@bp.get("/export")
@roles_required(Role.COORDINATOR)
def export() -> Response | tuple[str, int]:
    made, _month, province, error = _request_report()
    output = request.args.get("format", "csv")
    if made is None or output not in {"csv", "json"}:
        return error or _("Choose CSV or JSON."), 400
    session = get_session()
    audit.record(
        session,
        now=clock_now(),
        action="export",
        object_type="report",
        object_id=made.period.label,
        actor=current_user,
        detail={"province": province or None, "format": output, "rows": len(made.rows)},
    )
    session.commit()
    name = f"ali-report-{made.period.label}{'-' + province if province else ''}.{output}"
    body, mimetype = (
        (to_csv(made), "text/csv") if output == "csv" else (to_json(made), "application/json")
    )
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_nav(app, NavItem("reports.report_page", _l("Reports"), (Role.COORDINATOR,)))
