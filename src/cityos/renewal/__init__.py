"""Urban renewal (城市更新): facility siting (maximal covering, p-median) on a city bundle with
before/after indicators, and renewal priorities from the health check."""

from cityos.renewal.plan import SitePlan, plan_sites, write_plan
from cityos.renewal.siting import SitingResult, max_cover, p_median

__all__ = ["SitePlan", "SitingResult", "max_cover", "p_median", "plan_sites", "write_plan"]
