"""What every package of ShuffleNAS shares: the user-error type and its one-line CLI handling,
config fields described once, the MindSpore device runtime, and facts about this machine.

    from common import UserError               # bad input: one line, exit status 2 (run_main)
    from common.cli import read_yaml, run_main, ArgumentParser
    from common.settings import setting        # a config key: default, help, unit, choices
    from common.runtime import configure       # select the device and execution mode once
    from common.env import cpu_model           # what machine a number was measured on

Nothing here imports MindSpore at import time.
"""

from .errors import UserError

__all__ = ["UserError"]
