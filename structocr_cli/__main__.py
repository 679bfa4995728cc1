import sys

from structocr_cli.launch import main

sys.exit(main())
