"""`python -m fastmtcnn ...` is the same as the `fastmtcnn` command."""
from .cli import main

raise SystemExit(main())
