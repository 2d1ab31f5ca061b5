package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gowebpki/jcs"
)

// Plan is what an agent files before it works and a human approves: the
// five parts CC8.1 asks about, plus where and how risky.
type Plan struct {
	Objective    string `json:"objective"`
	Method       string `json:"method"`
	Scope        Scope  `json:"scope"`
	TestApproach string `json:"testApproach"`
	BackoutPath  string `json:"backoutPath"`
	Environment  string `json:"environment"`
	Risk         string `json:"risk,omitempty"`
	// Emergency lets a credential be issued before approval; the approval
	// is then due within the emergency window.
	Emergency bool `json:"emergency,omitempty"`
}

// Hash is the plan hash approvals bind to: lower-case hex SHA-256 of the
// plan's RFC 8785 canonical JSON.
func (p Plan) Hash() string {
	raw, err := json.Marshal(p)
	if err != nil {
		panic(err) // a Plan always marshals
	}
	canon, err := jcs.Transform(raw)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}

// Size is the plan's size for review-depth signals: its text in bytes
// plus 100 per scope rule.
func (p Plan) Size() int {
	return len(p.Objective) + len(p.Method) + len(p.TestApproach) + len(p.BackoutPath) + 100*len(p.Scope)
}

// ErrIncompletePlan: a part of the plan is missing or its scope is invalid.
var ErrIncompletePlan = errors.New("plan incomplete")

// Complete reports whether all five parts are present and the scope valid.
func (p Plan) Complete() error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"objective", p.Objective}, {"method", p.Method}, {"test approach", p.TestApproach}, {"backout path", p.BackoutPath},
	} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(p.Scope) == 0 {
		missing = append(missing, "scope")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrIncompletePlan, strings.Join(missing, ", "))
	}
	if err := p.Scope.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrIncompletePlan, err)
	}
	return nil
}
