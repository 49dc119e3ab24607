"""What an engine's run reports, mirroring the STATUS, PC and FAULT_ADDR registers."""
from collections import namedtuple

RunResult = namedtuple("RunResult", "status pc fault_addr")
