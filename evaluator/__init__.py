"""What a candidate is worth: measured latency (`latency`), per-part lookup tables (`lut`)."""

from .latency import LatencyResult, backends, measure
from .lut import LatencyTable, build_table, check_table

__all__ = ["LatencyResult", "LatencyTable", "backends", "build_table", "check_table", "measure"]
