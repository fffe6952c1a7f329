"""The grammar of `.agentpolicy` files (`agentpolicy.lark`) and its generated LALR(1) tables.

`_tables.py` is written by `scripts/gen_parser_tables.py`; the parser runs on it without Lark.
"""
