"""Surfaces (console, Slack, Teams, REST) and the CLI that wires them."""
