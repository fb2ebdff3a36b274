"""Health-check outputs for people: one offline HTML report and the Excel reporting tables."""

from cityos.report.excel import write_workbook
from cityos.report.html import write_html

__all__ = ["write_html", "write_workbook"]
