import sys

from structocr_cli.cli import main

sys.exit(main())
