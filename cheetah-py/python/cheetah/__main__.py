"""`python -m cheetah`: the `cheetah` command, as the console script runs it."""

from ._cli import main

main()
