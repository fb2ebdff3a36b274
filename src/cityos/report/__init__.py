"""Health-check outputs for people: the Excel workbook of the reporting tables (the HTML report
with maps is issue 5's remaining part)."""

from cityos.report.excel import write_workbook

__all__ = ["write_workbook"]
