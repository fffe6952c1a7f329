"""The `secrets` module: credentials in well-known formats, plus generic assignments.

Vendor formats are anchored on their fixed prefixes (`AKIA`, `ghp_`, `xoxb-`, `sk_live_`,
`eyJ`), which keeps the RE2 Set cheap on clean text: the DFA leaves the start state only on
those prefixes. Validators then reject placeholders and low-entropy filler.

Where a pattern's counted repetitions or case folding make it costly to compile, the Set
holds its literal prefix (or, for `generic`, the words every name holds) as a
`MatcherSpec.prefilter`: compiling the Set of `secrets.any` went from ~1.9 ms to ~0.2 ms
of every fresh process (a hook call), and a pattern is compiled only for a value that
holds its prefilter.
"""

from __future__ import annotations

from functools import partial

from charter.stdlib import validators as v
from charter.stdlib.spec import MatcherSpec

_B62 = "[A-Za-z0-9]"

AWS_ACCESS_KEY = MatcherSpec(
    name="secrets.aws_access_key",
    pattern=r"\b((?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|A3T[A-Z0-9])[A-Z2-7]{16})\b",
    placeholder="[AWS_ACCESS_KEY]",
    validator=v.aws_key_id,
    doc="AWS access key id (AKIA…/ASIA…, 20 characters).",
    group=1,
)

GITHUB_TOKEN = MatcherSpec(
    name="secrets.github_token",
    pattern=(
        r"\b((?:ghp|gho|ghu|ghs|ghr)_" + _B62 + r"{36}"
        r"|github_pat_" + _B62 + r"{22}_" + _B62 + r"{59})\b"
    ),
    placeholder="[GITHUB_TOKEN]",
    validator=v.random_token,
    doc="GitHub token: classic/OAuth/app (ghp_, gho_, ghu_, ghs_, ghr_) or fine-grained PAT.",
    group=1,
)

SLACK_TOKEN = MatcherSpec(
    name="secrets.slack_token",
    pattern=(
        r"\b(xox[abposr]-[0-9]{8,14}-(?:[0-9]{8,14}-){0,2}[A-Za-z0-9]{24,64}"
        r"|xapp-[0-9]-[A-Z0-9]{8,12}-[0-9]{8,14}-[a-f0-9]{32,64}"
        r"|https://hooks\.slack\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/" + _B62 + r"{24})\b"
    ),
    placeholder="[SLACK_TOKEN]",
    validator=v.random_token,
    doc="Slack bot/user/app token (xoxb-, xoxp-, xapp-…) or incoming webhook URL.",
    group=1,
    prefilter=r"xox[abposr]-|xapp-|hooks\.slack\.com/services/",  # each alternative's literal start
)

STRIPE_KEY = MatcherSpec(
    name="secrets.stripe_key",
    pattern=r"\b((?:sk|rk)_(?:live|test)_" + _B62 + r"{24,99}|whsec_" + _B62 + r"{32,64})\b",
    placeholder="[STRIPE_KEY]",
    validator=v.random_token,
    doc="Stripe secret or restricted key (sk_live_, rk_test_…) or webhook secret (whsec_).",
    group=1,
    prefilter=r"[sr]k_(?:live|test)_|whsec_",  # each alternative's literal start
)

OPENAI_KEY = MatcherSpec(
    name="secrets.openai_key",
    pattern=(
        r"\b(sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)[0-9]{2}-)?[A-Za-z0-9_\-]{32,200})"
        r"(?:$|[^A-Za-z0-9_\-])"
    ),
    placeholder="[OPENAI_KEY]",
    validator=partial(v.random_token, floor=3.5),
    doc="OpenAI-style API key (sk-…, sk-proj-…; also Anthropic sk-ant-…).",
    group=1,
    prefilter=r"sk-",  # every key starts so
)

JWT = MatcherSpec(
    name="secrets.jwt",
    pattern=r"\b(eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*)",
    placeholder="[JWT]",
    validator=v.jwt,
    doc="JSON Web Token; header and payload are decoded and must be JSON objects.",
    group=1,
)

PRIVATE_KEY = MatcherSpec(
    name="secrets.private_key",
    pattern=(
        r"(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"|[A-Za-z0-9+/=\s\\]{64,}))"
    ),
    placeholder="[PRIVATE_KEY]",
    validator=v.pem_private_key,
    doc="PEM private key block (RSA, EC, DSA, OPENSSH, PGP, PKCS#8).",
    group=1,
    prefilter=r"-----BEGIN ",  # every block starts so
)

GENERIC_SECRET = MatcherSpec(
    name="secrets.generic",
    pattern=(
        r"(?i)\b[a-z0-9_.\-]*"
        r"(?:api[_.\-]?key|secret|token|passw(?:or)?d|pwd|auth[_.\-]?key|access[_.\-]?key)"
        r"[a-z0-9_.\-]*[\"']?[ \t]*(?::=|=>|=|:)[ \t]*[\"'`]?"
        r"([^\s\"'`,;]{7,199}[^\s\"'`,;.])"  # a sentence's full stop is not part of it
    ),
    placeholder="[SECRET]",
    validator=v.secret_value,
    doc="`api_key / secret / token / password = value` with a literal high-entropy value.",
    group=1,
    prefilter=r"(?i:key|secret|token|passw|pwd)",  # in each of its names (api_key, passwd...)
)

SPECS: tuple[MatcherSpec, ...] = (
    AWS_ACCESS_KEY,
    GITHUB_TOKEN,
    SLACK_TOKEN,
    STRIPE_KEY,
    OPENAI_KEY,
    JWT,
    PRIVATE_KEY,
    GENERIC_SECRET,
)
