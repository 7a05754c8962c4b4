"""Talking to OpenAI-compatible model APIs: SSE decoding, the client, key pools, the router."""
