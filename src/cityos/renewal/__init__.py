"""Urban renewal (城市更新): facility siting (maximal covering) — priorities and the CLI follow."""

from cityos.renewal.siting import SitingResult, max_cover, p_median

__all__ = ["SitingResult", "max_cover", "p_median"]
