"""`python -m service`: the same as the installed `volta-service` (service/cli.py)."""

from service.cli import main

raise SystemExit(main())
