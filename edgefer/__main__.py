"""``python -m edgefer VERB ...``: the ``edgefer`` command (also under ``torchrun ... -m edgefer teacher ...``)."""

import sys

from edgefer.edge.cli import main

sys.exit(main())
