"""AI draft replies: the chat-model port, its OpenAI-compatible adapter, the retrieval
drafter used when no model is configured, the prompt, the safety checks, the cache and the
admin's settings (ADR 0036)."""
