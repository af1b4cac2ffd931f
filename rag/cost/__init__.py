"""`rag cost`: what each generator architecture costs (time, memory, caches) against the number of
passages, measured with RANDOM weights built from public hyper-parameters: cost only, not quality.

Importing this package is cheap (no torch): the CLI registers `cost_command`, the library calls
`run_cost`.
"""

from rag.cost.cli import cost_command
from rag.cost.run import CostResult, CostSettings, run_cost

__all__ = ["cost_command", "run_cost", "CostSettings", "CostResult"]
