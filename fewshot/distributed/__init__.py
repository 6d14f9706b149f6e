"""Classification on a cluster: :mod:`~fewshot.distributed.ray_engine` (Ray Data), the same output bytes as the
local engine."""
