"""Adapters that put a Charter Guard inside agent frameworks' own tool hooks.

One module per framework (`langchain`, `pydantic_ai`, `openai_agents`, `adk`), each a thin
translation over `gate.ToolGate`; each imports its framework lazily, so importing an adapter
without its framework installed works and `import charter` stays cheap. See docs/hosts.md.
"""
