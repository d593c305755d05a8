import sys

from joblet.persist.service import main

sys.exit(main())
