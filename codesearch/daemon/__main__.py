"""``python -m codesearch.daemon``: run the daemon in the foreground (service managers)."""

import sys

from codesearch.daemon.server import main

sys.exit(main())
