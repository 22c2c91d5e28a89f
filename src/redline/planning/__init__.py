"""Planning: snapshot + user choices in, a Plan with a reason for every setting out. Pure."""

from .cluster import parse_tf_config
from .model import AUTO, ENVIRONMENT, USER, Cluster, Plan, Setting
from .planner import GPU_MEMORY_MODES, POLICIES, STRATEGIES, plan

__all__ = ["AUTO", "ENVIRONMENT", "USER", "Cluster", "GPU_MEMORY_MODES", "POLICIES", "Plan", "STRATEGIES", "Setting", "parse_tf_config", "plan"]
