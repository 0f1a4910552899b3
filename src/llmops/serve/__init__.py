"""The answer service: RAG over the serving index + the champion model, writing the generation log."""
