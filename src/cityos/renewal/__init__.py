"""Urban renewal (城市更新): facility siting (maximal covering, p-median) on a city bundle with
before/after indicators, and renewal priorities from the health check."""

from cityos.renewal.plan import SitePlan, plan_sites, write_plan
from cityos.renewal.priorities import load_weights, priorities, write_priorities
from cityos.renewal.siting import SitingResult, max_cover, p_median

__all__ = [
    "SitePlan",
    "SitingResult",
    "load_weights",
    "max_cover",
    "p_median",
    "plan_sites",
    "priorities",
    "write_plan",
    "write_priorities",
]
