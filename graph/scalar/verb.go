// Package scalar holds the GraphQL scalars Docket defines.
package scalar

import (
	"fmt"

	"github.com/99designs/gqlgen/graphql"

	"github.com/evidence-parity/docket/domain"
)

// Verb is a scope verb (read, write, delete, exec, deploy, migrate, call),
// a string on the wire.
type Verb = domain.Verb

// MarshalVerb writes a verb as a GraphQL string.
func MarshalVerb(v domain.Verb) graphql.Marshaler { return graphql.MarshalString(string(v)) }

// UnmarshalVerb reads a verb from a GraphQL string.
func UnmarshalVerb(v any) (domain.Verb, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("verb must be a string, got %T", v)
	}
	return domain.Verb(s), nil
}
