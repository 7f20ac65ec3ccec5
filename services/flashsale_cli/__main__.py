"""`python -m flashsale_cli COMMAND`: the `flashsale` console script without its launcher."""

import sys

from flashsale_cli.main import main

sys.exit(main())
