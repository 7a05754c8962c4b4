"""Live conversation stores: the ``ConversationStore`` protocol (``base``) and its backends."""
