"""The remote backend: an OpenAI-compatible ``/embeddings`` server (vLLM, TEI, infinity) with
the standard library only. backend.py: the registry entry and the settings; embedder.py: the
embedder; transport.py: HTTP; policy.py: retries and the circuit breaker."""

from codesearch.embed.remote.backend import BACKEND

__all__ = ["BACKEND"]
