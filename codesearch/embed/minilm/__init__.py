"""The transformers backend (BERT-like sentence-transformers models on the CPU): ``minilm-code``
(the CPU default: all-MiniLM-L6-v2 with codesearch's code adapter merged in), ``minilm`` and
``hf`` (a local model folder or a cached Hugging Face id).

backend.py holds the registry entries (no torch), files.py where the files are and the model
ids, embedder.py the embedder (torch, imported when a model is loaded).
"""

from codesearch.embed.minilm.backend import CODE, FOLDER, PLAIN

__all__ = ["CODE", "FOLDER", "PLAIN"]
