"""codesearch's editor face: a language server over the codesearch daemon (see lsp/README.md).

``lsp.server`` holds every registration; ``lsp.convert`` the pure conversions to LSP shapes.
pygls is imported only in this package, and ``codesearch`` never imports it.
"""
