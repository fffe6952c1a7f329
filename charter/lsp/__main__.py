"""`python -m charter.lsp`: the same as `charter lsp`."""

from charter.lsp.server import main

main()
