"""``python -m lsp``: the codesearch language server on stdio (same as ``codesearch-lsp``)."""

import sys

from lsp.server import main

sys.exit(main())
