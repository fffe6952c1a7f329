# Reference agent policy in Rego: the same decisions as policy.agentpolicy.
# Query: data.charter.reference.decision -> "allow" | "deny" | "require_approval".
package charter.reference

import rego.v1

eu_regions := {"eu-west-1", "eu-central-1"}

refund_currencies := {"USD", "EUR", "GBP"}

declared_tags := {
	"kb.read": {"read"},
	"search.web": {"read"},
	"calendar.list": {"read"},
	"refund.create": {"write", "money"},
	"files.delete": {"destructive"},
	"db.drop": {"destructive"},
	"crm.export": {"export"},
	"email.send": {"external"},
	"deploy.run": {"prod"},
	"admin.reset_user": {"admin"},
}

# The wire format allows "tool": "name" or "tool": {"name": ...}.
tool := input.tool if {
	is_string(input.tool)
} else := input.tool.name

tags := object.get(declared_tags, tool, set())

# Same decision procedure as Charter: any deny, or nothing allows -> deny;
# else any approval rule -> require_approval; else allow.
decision := "deny" if {
	count(deny) > 0
} else := "deny" if {
	not allowed
} else := "require_approval" if {
	count(approval) > 0
} else := "allow"

# --- allow rules
allowed if glob.match("kb.*", ["."], tool)

allowed if glob.match("search.*", ["."], tool)

allowed if "read" in tags

allowed if {
	tool == "refund.create"
	input.agent.team == "support"
}

allowed if "destructive" in tags

allowed if tool == "crm.export"

allowed if tool == "email.send"

allowed if tool == "deploy.run"

allowed if {
	glob.match("admin.*", ["."], tool)
	"admin" in input.user.roles
}

# --- approval rules
approval contains "finance" if {
	tool == "refund.create"
	input.args.amount > 100
}

approval contains "release" if {
	"prod" in tags
	input.agent.env == "prod"
}

approval contains "operator" if input.session.consecutive_tool_calls > 5

# --- deny rules
deny contains "refunds over $5,000 are handled offline" if {
	tool == "refund.create"
	input.args.amount > 5000
}

deny contains "unsupported refund currency" if {
	tool == "refund.create"
	not input.args.currency in refund_currencies
}

deny contains "destructive tools need a human" if {
	"destructive" in tags
	not "sre" in input.user.roles
}

deny contains "production tables are never dropped" if {
	tool == "db.drop"
	startswith(input.args.table, "prod_")
}

deny contains "customer data stays in the EU" if {
	"export" in tags
	not input.args.region in eu_regions
}

deny contains "sensitive tables are not exported" if {
	tool == "crm.export"
	input.args.table in {"payments", "credentials"}
}

deny contains "email only to @example.com" if {
	tool == "email.send"
	not endswith(input.args.to, "@example.com")
}

deny contains "experimental agents stay out of prod" if {
	input.agent.env == "prod"
	input.agent.team == "experimental"
}

deny contains "cross-tenant call" if input.agent.tenant != input.user.tenant

deny contains "session budget of $2 reached" if {
	input.session.cost_usd + object.get(input, ["estimate", "cost_usd"], 0) > 2
}
