"""Offline render: the program run under Pulumi's mock runtime (`python -m tools.render`)."""

from tools.render.engine import Rendered, render_stack, run_under_mocks

__all__ = ["Rendered", "render_stack", "run_under_mocks"]
