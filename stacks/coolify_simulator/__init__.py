"""The Coolify simulator: a stateful fake of Coolify's API for tests, demos and `make run`."""

from stacks.coolify_simulator.api import SimulatedCoolify, Timings, Token
from stacks.coolify_simulator.server import Fault, SimulatorServer

__all__ = ["Fault", "SimulatedCoolify", "SimulatorServer", "Timings", "Token"]
