"""What crosses a process boundary, defined once as typed (pydantic) models.

- :mod:`.hits`: a search result (the CLI's ``--json`` records, the daemon's and the MCP
  server's hits) and the documents the CLI prints;
- :mod:`.daemon`: every request and answer on the daemon's socket;
- :mod:`.lsp`: the language server's custom requests and their answers;
- :mod:`.mcp`: the MCP tools' structured outputs;
- :mod:`.base`: the base class, and turning a failed validation into one clear line;
- :mod:`.schema`: the JSON Schemas in ``docs/`` (``python -m codesearch.wire.schema``).

Cheap to import: pydantic and the standard library only (a face never imports torch).
"""
