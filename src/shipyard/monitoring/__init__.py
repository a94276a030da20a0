"""Monitoring: alert rules on endpoints, their channels (Slack, webhooks) and history.

The use cases take the actor, check its role in the project (maintainers change rules and
channels, viewers read), make the change and write the audit record; the alert evaluator
advances the rules through ``evaluate`` as the system actor ``alert evaluator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.surface import exports, names

if TYPE_CHECKING:
    from shipyard.monitoring.channels import ChannelTest as ChannelTest
    from shipyard.monitoring.channels import create_channel as create_channel
    from shipyard.monitoring.channels import delete_channel as delete_channel
    from shipyard.monitoring.channels import list_channels as list_channels
    from shipyard.monitoring.channels import test_channel as test_channel
    from shipyard.monitoring.schemas import METRICS as METRICS
    from shipyard.monitoring.schemas import ChannelCreate as ChannelCreate
    from shipyard.monitoring.schemas import ChannelOut as ChannelOut
    from shipyard.monitoring.schemas import DeliveryOut as DeliveryOut
    from shipyard.monitoring.schemas import EventOut as EventOut
    from shipyard.monitoring.schemas import RuleCreate as RuleCreate
    from shipyard.monitoring.schemas import RuleOut as RuleOut
    from shipyard.monitoring.schemas import RulePatch as RulePatch
    from shipyard.monitoring.service import create_rule as create_rule
    from shipyard.monitoring.service import delete_rule as delete_rule
    from shipyard.monitoring.service import evaluate as evaluate
    from shipyard.monitoring.service import firing_out as firing_out
    from shipyard.monitoring.service import get_rule as get_rule
    from shipyard.monitoring.service import list_events as list_events
    from shipyard.monitoring.service import list_rules as list_rules
    from shipyard.monitoring.service import record_deliveries as record_deliveries
    from shipyard.monitoring.service import rules_on as rules_on
    from shipyard.monitoring.service import update_rule as update_rule
    from shipyard.monitoring.targets import Policy as Policy

_SURFACE = {
    "channels": [
        "ChannelTest",
        "create_channel",
        "delete_channel",
        "list_channels",
        "test_channel",
    ],
    "schemas": [
        "METRICS",
        "ChannelCreate",
        "ChannelOut",
        "DeliveryOut",
        "EventOut",
        "RuleCreate",
        "RuleOut",
        "RulePatch",
    ],
    "service": [
        "create_rule",
        "delete_rule",
        "evaluate",
        "firing_out",
        "get_rule",
        "list_events",
        "list_rules",
        "record_deliveries",
        "rules_on",
        "update_rule",
    ],
    "targets": ["Policy"],
}
__all__ = names(_SURFACE)
__getattr__ = exports(__name__, _SURFACE)
