package domain

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Role is what a principal may do.
type Role string

// The roles (DESIGN.md, "Identity").
const (
	RoleRequester Role = "requester"
	RoleApprover  Role = "approver"
	RoleAuditor   Role = "auditor"
	RoleAdmin     Role = "admin"
)

// ValidRole reports whether r is one of the roles.
func ValidRole(r Role) bool {
	return slices.Contains([]Role{RoleRequester, RoleApprover, RoleAuditor, RoleAdmin}, r)
}

// Principal is a human's identity, folded from its stream.
type Principal struct {
	ID        string
	Name      string
	Email     string
	Roles     map[Role]bool
	Authority Scope             // what an approver may approve
	Tokens    map[string]string // token id → hash, live tokens only
}

// Apply folds one event of the principal's stream.
func (p *Principal) Apply(e Event) {
	switch e := e.(type) {
	case PrincipalRegistered:
		p.ID, p.Name, p.Email = e.Principal, e.Name, e.Email
		p.Roles, p.Tokens = map[Role]bool{}, map[string]string{}
	case RoleGranted:
		p.Roles[e.Role] = true
		if e.Role == RoleApprover {
			p.Authority = e.Authority
		}
	case RoleRevoked:
		delete(p.Roles, e.Role)
		if e.Role == RoleApprover {
			p.Authority = nil
		}
	case TokenIssued:
		p.Tokens[e.TokenID] = e.Hash
	case TokenRevoked:
		delete(p.Tokens, e.TokenID)
	}
}

// Agent is an entry of the agent inventory.
type Agent struct {
	ID      string
	Name    string
	Owner   string
	Harness string
	Retired bool
	Keys    map[string]string // key id → hash
}

// Apply folds one event of the agent's stream.
func (a *Agent) Apply(e Event) {
	switch e := e.(type) {
	case AgentRegistered:
		a.ID, a.Name, a.Owner, a.Harness = e.Agent, e.Name, e.Owner, e.Harness
		a.Keys = map[string]string{}
	case AgentKeyIssued:
		a.Keys[e.KeyID] = e.Hash
	case AgentRetired:
		a.Retired = true
		a.Keys = map[string]string{}
	}
}

// Secret prefixes. A secret reads "<prefix><ref>.<random>": ref names the
// stream that holds its hash, so checking it needs no index, and the
// random part (32 bytes, base64url) makes guessing hopeless.
const (
	PrefixToken    = "dkt_tok_"
	PrefixAgentKey = "dkt_agent_"
	PrefixSession  = "dkt_sess_"
)

// NewSecret formats a secret from its reference and 32 random bytes.
func NewSecret(prefix, ref string, random []byte) string {
	return prefix + ref + "." + base64.RawURLEncoding.EncodeToString(random)
}

// SecretRef returns the reference part of a secret with the given prefix.
func SecretRef(prefix, secret string) (string, bool) {
	rest, ok := strings.CutPrefix(secret, prefix)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || i == len(rest)-1 {
		return "", false
	}
	return rest[:i], true
}

// HashSecret is how secrets are stored: lower-case hex SHA-256. The secrets
// carry 256 random bits, so a fast hash is enough.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches compares a presented secret with a stored hash in constant
// time.
func SecretMatches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(hash)) == 1
}

// MatchToken returns the id of the live token a secret matches, checking
// every stored hash in constant time.
func (p *Principal) MatchToken(secret string) (string, bool) {
	found := ""
	for id, h := range p.Tokens {
		if SecretMatches(secret, h) {
			found = id
		}
	}
	return found, found != ""
}

// MatchKey returns the id of the live agent key a secret matches.
func (a *Agent) MatchKey(secret string) (string, bool) {
	if a.Retired {
		return "", false
	}
	found := ""
	for id, h := range a.Keys {
		if SecretMatches(secret, h) {
			found = id
		}
	}
	return found, found != ""
}

// Covers reports whether an approver's authority covers a scope rule: some
// authority rule grants every verb of the rule and its pattern matches the
// rule's pattern read literally (so `file:github.com/acme/**` covers
// `file:github.com/acme/api/src/**` but not `file:**`).
func (s Scope) Covers(r Rule) bool {
	kind, pattern, _ := strings.Cut(r.Resource, ":")
	for _, a := range s {
		ak, ap, _ := strings.Cut(a.Resource, ":")
		if ak != kind || !matches(kind, ap, pattern) {
			continue
		}
		all := true
		for _, v := range r.Verbs {
			all = all && slices.Contains(a.Verbs, v)
		}
		if all {
			return true
		}
	}
	return false
}

// Uncovered returns the first rule of plan not covered by authority.
func (s Scope) Uncovered(plan Scope) (Rule, bool) {
	for _, r := range plan {
		if !s.Covers(r) {
			return r, true
		}
	}
	return Rule{}, false
}

func errorf(cat error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{cat}, args...)...)
}
