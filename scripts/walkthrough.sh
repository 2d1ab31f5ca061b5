#!/usr/bin/env bash
# The README's walk-through, "The API in one change": one change driven end
# to end over the GraphQL API with curl (and jq to pick ids out of the
# answers), on a fresh data folder. It prints each operation and the
# server's answer, and stops at the first answer that is not the one the
# README shows. test/walkthrough_test.go runs it.
#
#   DOCKET=./bin/docket DOCKET_DATA=/tmp/walk scripts/walkthrough.sh
#
# DOCKET is the docket binary (default: ./bin/docket); DOCKET_DATA must be a
# new or empty folder; DOCKET_LISTEN is where the server listens (default
# 127.0.0.1:8080; 127.0.0.1:0 picks a free port).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
DOCKET=${DOCKET:-$here/bin/docket}
export DOCKET_DATA=${DOCKET_DATA:?set DOCKET_DATA to a new folder}
export DOCKET_LISTEN=${DOCKET_LISTEN:-127.0.0.1:8080}

say() { printf '\n# %s\n' "$*"; }
fail() { echo "walkthrough: $*" >&2; exit 1; }
secret() { grep -o 'dkt_[a-z]*_[^ ]*' | head -1; }

say "Bootstrap people and an agent (before the server starts: it holds the ledger's write lock)"
"$DOCKET" principals add alice --role requester
BOB=$("$DOCKET" principals add bob --role approver --authority 'file:github.com/acme/**=read,write' --authority 'cmd:**=exec' | secret)
CAROL=$("$DOCKET" principals add carol --role auditor | secret)
AGENT=$("$DOCKET" agents add claude-ci --owner alice --harness claude-code | secret)
[ -n "$BOB" ] && [ -n "$CAROL" ] && [ -n "$AGENT" ] || fail "no tokens printed"

log=$(mktemp)
"$DOCKET" serve >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
	url=$(grep -o 'http://[0-9.:]*' "$log" | head -1 || true)
	[ -n "$url" ] && break
	kill -0 $server 2>/dev/null || { cat "$log" >&2; fail "docket serve exited"; }
	sleep 0.1
done
[ -n "$url" ] || fail "docket serve printed no address"
echo "serving on $url"

# q TOKEN QUERY [VARIABLES]: posts an operation, prints the answer and
# keeps it in $out.
q() {
	local body
	body=$(jq -cn --arg q "$2" --argjson v "${3:-{\}}" '{query: $q, variables: $v}')
	echo "> $2"
	out=$(curl -sS "$url/graphql" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$body")
	echo "$out"
}
# expect JQ-FILTER: the last answer must satisfy it.
expect() { jq -e "$1" >/dev/null <<<"$out" || fail "expected $1"; }

say "The agent files the plan"
q "$AGENT" 'mutation { submitPlan(input: {requestedBy: "alice", plan: {objective: "Fix rounding in invoice totals", method: "decimal arithmetic", scope: [{resource: "file:github.com/acme/api/src/billing/**", verbs: ["read", "write"]}, {resource: "cmd:go test *", verbs: ["exec"]}], testApproach: "go test ./...", backoutPath: "git revert", environment: "production"}}) { changeId planHash } }'
expect '.data.submitPlan.changeId | startswith("chg-")'
CHANGE=$(jq -r .data.submitPlan.changeId <<<"$out")
HASH=$(jq -r .data.submitPlan.planHash <<<"$out")
ref=$(jq -cn --arg id "$CHANGE" --arg hash "$HASH" '{id: $id, hash: $hash}')

say "Bob opens and approves that exact plan hash"
q "$BOB" 'mutation($id: ID!) { viewPlan(input: {changeId: $id}) { status } }' "$ref"
expect '.data.viewPlan.status == "submitted"'
q "$BOB" 'mutation($id: ID!, $hash: String!) { approvePlan(input: {changeId: $id, planHash: $hash, comment: "scope and backout are right"}) { status approver } }' "$ref"
expect '.data.approvePlan.status == "approved"'

say "The issuance gate passes: the agent's session credential, shown once"
q "$AGENT" 'mutation($id: ID!) { requestSession(input: {changeId: $id}) { sessionId credential expiresAt } }' "$ref"
expect '.data.requestSession.credential | startswith("dkt_sess_")'
CRED=$(jq -r .data.requestSession.credential <<<"$out")

say "An in-scope action is recorded"
q "$CRED" 'mutation { recordAction(input: {kind: "edit", uses: [{resource: "file:github.com/acme/api/src/billing/total.go", verb: "write"}]}) { inScope verdicts { allowed reason } } }'
expect '.data.recordAction.inScope == true'

say "An out-of-scope action is refused: the credential is revoked and an exception opens"
q "$CRED" 'mutation { recordAction(input: {kind: "read", uses: [{resource: "env:AWS_SECRET_ACCESS_KEY", verb: "read"}]}) { inScope } }'
expect '.errors[0].extensions.code == "OUT_OF_SCOPE"'

say "The dead credential is refused even for an in-scope action"
q "$CRED" 'mutation { recordAction(input: {kind: "edit", uses: [{resource: "file:github.com/acme/api/src/billing/total.go", verb: "write"}]}) { inScope } }'
expect '.errors[0].extensions.code == "UNAUTHENTICATED"'

say "With the exception open (and no evidence) the promotion gate refuses"
q "$AGENT" 'mutation($id: ID!) { requestPromotion(input: {changeId: $id}) { status } }' "$ref"
expect '.errors[0].extensions.code == "CONFLICT" and .errors[0].extensions.reason == "GATE_FAILED"'

say "Bob resolves the exception"
q "$BOB" 'query($id: ID!) { change(id: $id) { exceptions { id kind resolved } } }' "$ref"
expect '.data.change.exceptions | length == 1 and .[0].kind == "deviation" and .[0].resolved == false'
EXC=$(jq -r '.data.change.exceptions[0].id' <<<"$out")
q "$BOB" 'mutation($id: ID!, $x: ID!) { resolveException(input: {changeId: $id, exceptionId: $x, disposition: "remediated", justification: "key rotated; the read was a probe"}) { unresolved } }' \
	"$(jq -cn --arg id "$CHANGE" --arg x "$EXC" '{id: $id, x: $x}')"
expect '.data.resolveException.unresolved == 0'

say "A new session: test and scan reports attached (the report text goes in content), then the session ends"
q "$AGENT" 'mutation($id: ID!) { requestSession(input: {changeId: $id}) { sessionId credential } }' "$ref"
expect '.data.requestSession.credential | startswith("dkt_sess_")'
CRED=$(jq -r .data.requestSession.credential <<<"$out")
attach='mutation($k: String!, $f: String!, $c: String!) { attachEvidence(input: {kind: $k, format: $f, content: $c}) { summary { testsPassed testsFailed critical high } } }'
q "$CRED" "$attach" "$(jq -cn --rawfile c "$here/domain/report/testdata/gotestsum-passing.xml" '{k: "test", f: "junit", c: $c}')"
expect '.data.attachEvidence.summary.testsFailed == 0'
q "$CRED" "$attach" "$(jq -cn --rawfile c "$here/domain/report/testdata/gosec-clean.sarif" '{k: "scan", f: "sarif", c: $c}')"
expect '.data.attachEvidence.summary.high == 0'
q "$CRED" 'mutation { endSession(input: {}) }'
expect '.data.endSession == true'

say "Promotion, with the five CC8.1 answers"
q "$AGENT" 'mutation($id: ID!) { requestPromotion(input: {changeId: $id}) { status answers { question result } } }' "$ref"
expect '.data.requestPromotion.status == "promoted"'

say "What the answers rest on, attribute by attribute (an auditor's token)"
q "$CAROL" 'query($id: ID!) { change(id: $id) { answers { question attributes { name result detail events } } } }' "$ref"
expect '[.data.change.answers[].attributes[] | select(.name == "every_action_in_scope")][0].result == "exception"'
expect '[.data.change.answers[].attributes[] | select(.name == "review_depth")][0].result == "fail"'
EVENT=$(jq -r '.data.change.answers[0].attributes[0].events[0]' <<<"$out")

say "An event's inclusion proof against the latest signed checkpoint (signed within a second of the write)"
for _ in $(seq 50); do
	q "$CAROL" 'query($e: ID!) { proof(eventId: $e) { position leafHash hashes checkpoint { size note } } }' "$(jq -cn --arg e "$EVENT" '{e: $e}')" >/dev/null
	jq -e '.data.proof' >/dev/null <<<"$out" && break
	sleep 0.2
done
echo "$out"
expect '.data.proof.checkpoint.size > .data.proof.position'
say "done: change $CHANGE promoted"
