import sys

from joblet.state.service import main

sys.exit(main())
