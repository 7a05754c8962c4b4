"""OpenAI's Responses API on our own engine: items, requests, output and stream events.

No HTTP here (``api.responses`` is the dialect); the object shapes are the ``openai`` SDK's.
"""
