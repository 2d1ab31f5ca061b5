// Package domain holds Docket's Evidence Parity rules: the events, the
// commands and the pure decisions that turn one into the other. It does no
// I/O.
package domain

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
)

// Verb is what an action does to a resource.
type Verb string

// The verbs a scope rule may grant.
const (
	Read    Verb = "read"
	Write   Verb = "write"
	Delete  Verb = "delete"
	Exec    Verb = "exec"
	Deploy  Verb = "deploy"
	Migrate Verb = "migrate"
	Call    Verb = "call"
)

var verbs = []Verb{Read, Write, Delete, Exec, Deploy, Migrate, Call}

// Resource kinds: the URI scheme of a resource.
const (
	KindFile = "file" // file:<repo>/<path>, repo like github.com/acme/api
	KindCmd  = "cmd"  // cmd:<command line>
	KindEnv  = "env"  // env:<variable name>
	KindDB   = "db"   // db:<database name>
	KindNet  = "net"  // net:<host>
	KindMCP  = "mcp"  // mcp:<server>/<tool>
)

var kinds = []string{KindFile, KindCmd, KindEnv, KindDB, KindNet, KindMCP}

// Rule grants verbs on the resources its pattern matches. Patterns are
// resource URIs whose part after the kind is a doublestar glob
// (github.com/bmatcuk/doublestar/v4): `*` stays within one path segment,
// `**` crosses segments.
type Rule struct {
	Resource string `json:"resource"`
	Verbs    []Verb `json:"verbs"`
}

// Scope is the list of rules a plan asks for and an approval grants.
type Scope []Rule

// Clone returns a copy of s that shares no memory with it (nil stays nil).
func (s Scope) Clone() Scope {
	if s == nil {
		return nil
	}
	out := make(Scope, len(s))
	for i, r := range s {
		out[i] = Rule{Resource: r.Resource, Verbs: slices.Clone(r.Verbs)}
	}
	return out
}

// ErrInvalidScope is returned for a malformed rule.
var ErrInvalidScope = errors.New("invalid scope")

// ErrInvalidResource is returned for a resource that cannot be matched
// safely: unknown kind, NUL bytes, invalid UTF-8, traversal, encoded
// traversal, or a command line with shell control operators.
var ErrInvalidResource = errors.New("invalid resource")

// Validate checks every rule: a known kind, a well-formed glob without
// traversal, and at least one known verb.
func (s Scope) Validate() error {
	if len(s) == 0 {
		return fmt.Errorf("%w: no rules", ErrInvalidScope)
	}
	for i, r := range s {
		if err := r.validate(); err != nil {
			return fmt.Errorf("rule %d (%s): %w", i+1, r.Resource, err)
		}
	}
	return nil
}

func (r Rule) validate() error {
	kind, pattern, ok := strings.Cut(r.Resource, ":")
	if !ok || !slices.Contains(kinds, kind) {
		return fmt.Errorf("%w: resource must start with one of %s:", ErrInvalidScope, strings.Join(kinds, ":, "))
	}
	if err := checkText(pattern); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidScope, err)
	}
	if pattern == "" || !doublestar.ValidatePattern(pattern) {
		return fmt.Errorf("%w: %q is not a valid glob", ErrInvalidScope, pattern)
	}
	if kind == KindFile && hasDotDot(pattern) {
		return fmt.Errorf("%w: a file pattern may not contain '..'", ErrInvalidScope)
	}
	if kind == KindCmd {
		if op := shellOperator(pattern); op != "" {
			return fmt.Errorf("%w: a command pattern may not contain %q", ErrInvalidScope, op)
		}
	}
	if len(r.Verbs) == 0 {
		return fmt.Errorf("%w: no verbs", ErrInvalidScope)
	}
	for _, v := range r.Verbs {
		if !slices.Contains(verbs, v) {
			return fmt.Errorf("%w: unknown verb %q", ErrInvalidScope, v)
		}
	}
	return nil
}

// Verdict is the outcome of checking one action against a scope, with its
// reason: which rule allowed it, or why none did.
type Verdict struct {
	Allowed bool `json:"allowed"`
	// Rule is the 0-based index of the allowing rule, or -1.
	Rule int `json:"rule"`
	// Resource is the normalised resource that was checked.
	Resource string `json:"resource"`
	Verb     Verb   `json:"verb"`
	Reason   string `json:"reason"`
}

// Check decides whether the scope allows verb on the resource URI. The
// resource is normalised first (NormalizeResource); a resource that cannot
// be normalised is never allowed.
func (s Scope) Check(resource string, verb Verb) Verdict {
	v := Verdict{Rule: -1, Resource: resource, Verb: verb}
	norm, err := NormalizeResource(resource)
	if err != nil {
		v.Reason = err.Error()
		return v
	}
	v.Resource = norm
	kind, value, _ := strings.Cut(norm, ":")
	verbMatched := false
	for i, r := range s {
		rk, pattern, ok := strings.Cut(r.Resource, ":")
		if !ok || rk != kind {
			continue
		}
		if !matches(kind, pattern, value) {
			continue
		}
		if !slices.Contains(r.Verbs, verb) {
			verbMatched = true
			continue
		}
		v.Allowed, v.Rule = true, i
		v.Reason = fmt.Sprintf("allowed by rule %d: %s %s", i+1, r.Resource, joinVerbs(r.Verbs))
		return v
	}
	if verbMatched {
		v.Reason = fmt.Sprintf("no rule grants %s on %s (rules match the resource but not the verb)", verb, norm)
	} else {
		v.Reason = fmt.Sprintf("no rule matches %s", norm)
	}
	return v
}

// matches applies a rule's glob. In a command line '/' is an ordinary
// character, so both sides swap it for NUL (which neither may contain)
// and `*` spans arguments like ./pkg/...; elsewhere '/' separates segments.
func matches(kind, pattern, value string) bool {
	if kind == KindCmd {
		pattern = strings.ReplaceAll(pattern, "/", "\x00")
		value = strings.ReplaceAll(value, "/", "\x00")
	}
	ok, err := doublestar.Match(pattern, value)
	return err == nil && ok
}

func joinVerbs(vs []Verb) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// NormalizeResource returns the canonical form of a resource URI, or an
// error wrapping ErrInvalidResource. File paths are cleaned (so `a/b/../c`
// is `a/c`) and may not climb above their root; percent-encoded dots,
// slashes, backslashes and NULs are refused rather than decoded; command
// lines have their whitespace collapsed and are refused when they contain
// shell control operators or substitutions, which would let one allowed
// command smuggle in another; hosts are lower-cased.
func NormalizeResource(uri string) (string, error) {
	kind, value, ok := strings.Cut(uri, ":")
	if !ok || !slices.Contains(kinds, kind) {
		return "", fmt.Errorf("%w: %q does not start with one of %s:", ErrInvalidResource, truncate(uri), strings.Join(kinds, ":, "))
	}
	if err := checkText(value); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidResource, err)
	}
	if value == "" {
		return "", fmt.Errorf("%w: empty %s resource", ErrInvalidResource, kind)
	}
	switch kind {
	case KindFile, KindMCP:
		if enc := encodedTraversal(value); enc != "" {
			return "", fmt.Errorf("%w: percent-encoded %q in a path", ErrInvalidResource, enc)
		}
		if strings.Contains(value, `\`) {
			return "", fmt.Errorf("%w: backslash in a path", ErrInvalidResource)
		}
		clean := path.Clean(value)
		if strings.HasPrefix(clean, "/") || hasDotDot(clean) {
			return "", fmt.Errorf("%w: path %q climbs above its root", ErrInvalidResource, truncate(value))
		}
		return kind + ":" + clean, nil
	case KindCmd:
		if op := shellOperator(value); op != "" {
			return "", fmt.Errorf("%w: command contains the shell operator %q, so it could run commands no rule names", ErrInvalidResource, op)
		}
		return kind + ":" + strings.Join(strings.Fields(value), " "), nil
	case KindNet:
		host := strings.ToLower(value)
		if strings.ContainsAny(host, "/@ ") {
			return "", fmt.Errorf("%w: %q is not a host name", ErrInvalidResource, truncate(value))
		}
		return kind + ":" + host, nil
	default:
		if strings.ContainsAny(value, " /") && kind == KindEnv {
			return "", fmt.Errorf("%w: %q is not a variable name", ErrInvalidResource, truncate(value))
		}
		return kind + ":" + value, nil
	}
}

// checkText refuses NUL and other control bytes and invalid UTF-8. Tabs
// are allowed (command lines) and normalised away later.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if r == 0 {
			return errors.New("contains a NUL byte")
		}
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return errors.New("contains a control character")
		}
	}
	return nil
}

func hasDotDot(p string) bool {
	return slices.Contains(strings.Split(p, "/"), "..")
}

// encodedTraversal returns the first percent-encoding of '.', '/', '\' or
// NUL in s: these are how traversal hides from a literal match.
func encodedTraversal(s string) string {
	lower := strings.ToLower(s)
	for _, enc := range []string{"%2e", "%2f", "%5c", "%00", "%25"} {
		if i := strings.Index(lower, enc); i >= 0 {
			return s[i : i+3]
		}
	}
	return ""
}

// shellOperator returns the first shell control operator, redirection or
// substitution in a command line, or "".
func shellOperator(cmd string) string {
	for _, op := range []string{";", "&", "|", "`", "$(", "${", ">", "<", "\n", "\r"} {
		if strings.Contains(cmd, op) {
			return op
		}
	}
	return ""
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
