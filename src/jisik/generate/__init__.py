"""Answers with citations: prompts within the model's token budget, LLM backends, chains, memory, logs."""
