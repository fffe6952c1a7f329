"""The Charter language server (`charter lsp`): diagnostics, hover, go-to-definition,
completion and formatting for `.agentpolicy` files, built on pygls."""
