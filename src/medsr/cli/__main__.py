"""`python -m medsr.cli ...` (and `torchrun ... -m medsr.cli ...`)."""

from medsr.cli import app

app()
