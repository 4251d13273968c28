"""Flows: collect the details a case needs (amount, date, merchant…) before opening it.

:mod:`agent.flows.spec` reads the flows file, :mod:`agent.flows.values` reads amounts, dates and
names out of messages, :mod:`agent.flows.engine` runs a conversation through them.
"""

from agent.flows.engine import FlowEngine, FlowState, FlowStep
from agent.flows.spec import SHIPPED_FLOWS, FlowBook, FlowFileError, FlowSpec, SlotSpec

__all__ = ["SHIPPED_FLOWS", "FlowBook", "FlowEngine", "FlowFileError", "FlowSpec", "FlowState", "FlowStep", "SlotSpec"]
