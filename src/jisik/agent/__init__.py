"""Agents with tools over knowledge bases: the tool contract, built-in tools, one loop with native tool calls,
text ReAct and self-ask strategies, and an MCP server (:mod:`jisik.agent.mcp_server`).

>>> from jisik.agent import tool
>>> @tool
... def vat(amount: float) -> str:
...     '''Korean VAT (10%) on an amount.'''
...     return str(round(amount * 0.1, 2))
>>> vat.parameters["properties"]["amount"]
{'type': 'number'}
"""

from jisik.agent.loop import STRATEGIES, Agent, AgentLimits, PassageBook
from jisik.agent.tools import FunctionTool, Tool, ToolResult, ToolSet, check_arguments, entry_point_tools, tool

__all__ = ["STRATEGIES", "Agent", "AgentLimits", "FunctionTool", "PassageBook", "Tool", "ToolResult", "ToolSet",
           "check_arguments", "entry_point_tools", "tool"]
