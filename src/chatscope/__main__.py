"""`python -m chatscope`."""

from __future__ import annotations

from chatscope.cli.main import main

raise SystemExit(main())
