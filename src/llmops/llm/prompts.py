"""The one prompt builder: what the answer service sends the model, and what training examples carry.

A model is trained on exactly the prompt it is served with: the same system prompt, the same retrieved
context (same retriever over the serving index, same ``top_k`` and ``context_chars``), the same layout.
The answer service, the evaluate stage and the training-set builder all call :func:`rag_messages`, so
the three can never drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence


def context_block(contexts: Sequence[str], context_chars: int) -> str:
    """The retrieved passages as the prompt shows them: joined by blank lines, cut at ``context_chars``."""
    return "\n\n".join(contexts)[:context_chars]


def rag_messages(question: str, contexts: Sequence[str], system_prompt: str, context_chars: int) -> list[dict[str, str]]:
    """Chat messages for one question: the system prompt, then the context block and the question."""
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": f"Context:\n{context_block(contexts, context_chars)}\n\nQuestion: {question}"},
    ]
