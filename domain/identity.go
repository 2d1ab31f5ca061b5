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
	return hashMatches(HashSecret(secret), hash)
}

// hashMatches compares a presented secret's hash with a stored one in
// constant time.
func hashMatches(presented, stored string) bool {
	return subtle.ConstantTimeCompare([]byte(presented), []byte(stored)) == 1
}

// matchSecret returns the id of the stored hash a secret matches. It hashes
// the secret once and compares it with every stored hash in constant time,
// so neither the time nor the hashing depends on which one matches.
func matchSecret(secret string, hashes map[string]string) (string, bool) {
	presented, found := HashSecret(secret), ""
	for id, h := range hashes {
		if hashMatches(presented, h) {
			found = id
		}
	}
	return found, found != ""
}

// MatchToken returns the id of the live token a secret matches, checking
// every stored hash.
func (p *Principal) MatchToken(secret string) (string, bool) { return matchSecret(secret, p.Tokens) }

// MatchKey returns the id of the live agent key a secret matches.
func (a *Agent) MatchKey(secret string) (string, bool) {
	if a.Retired {
		return "", false
	}
	return matchSecret(secret, a.Keys)
}

// Covers reports whether an approver's authority covers a scope rule: some
// authority rule grants every verb of the rule, and every resource the
// rule's pattern can match is matched by the authority's pattern. For a
// literal rule that is a plain match. For a rule with wildcards the check
// is deliberately narrow (glob containment in general is hard): the
// authority must be a literal prefix followed by `**`, and the rule's
// literal prefix must start with it. So `file:github.com/acme/**` covers
// `file:github.com/acme/api/src/**`, while `file:github.com/acme/api/*`
// covers neither `…/api/**` nor `…/api/{**}`.
func (s Scope) Covers(r Rule) bool {
	kind, pattern, _ := strings.Cut(r.Resource, ":")
	for _, a := range s {
		ak, ap, _ := strings.Cut(a.Resource, ":")
		if ak != kind || !coversPattern(kind, ap, pattern) {
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

const globMeta = "*?[{\\"

func coversPattern(kind, authority, pattern string) bool {
	if !strings.ContainsAny(pattern, globMeta) {
		return matches(kind, authority, pattern)
	}
	i := strings.IndexAny(authority, globMeta)
	if i < 0 || authority[i:] != "**" {
		return false
	}
	prefix := authority[:i]
	if kind != KindCmd && prefix != "" && !strings.HasSuffix(prefix, "/") {
		return false // "api**" is not a directory boundary
	}
	return strings.HasPrefix(literalPrefix(pattern), prefix)
}

// literalPrefix is a pattern's text before its first wildcard.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, globMeta); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// mayOverlap reports whether two patterns of one kind could match a common
// resource; it errs towards yes (it is used to honour freezes).
func mayOverlap(kind, a, b string) bool {
	am, bm := strings.ContainsAny(a, globMeta), strings.ContainsAny(b, globMeta)
	switch {
	case !am && !bm:
		return a == b
	case !am:
		return matches(kind, b, a)
	case !bm:
		return matches(kind, a, b)
	}
	pa, pb := literalPrefix(a), literalPrefix(b)
	return strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)
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
