"""`python -m charter.cli ARGS` is the `charter` command."""

from charter.cli.entry import main

main()
