"""alice_py: a self-hosted, stateful conversation service for LLM chat."""
__version__ = "0.1.0"
