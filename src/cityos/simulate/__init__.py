"""A living demo: a seeded, realistic month of operations (``cityos simulate``)."""

from cityos.simulate.plan import Plan, load_plan
from cityos.simulate.run import Simulation, Summary, prepare, simulate

__all__ = ["Plan", "Simulation", "Summary", "load_plan", "prepare", "simulate"]
