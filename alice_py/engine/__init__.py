"""The conversation engine: message trees, presets, request building, ConversationService.

Import from the submodules (``engine.service``, ``engine.tree`` …); this package
imports nothing so that ``store`` and ``engine`` can refer to each other.
"""
