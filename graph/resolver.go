// Package graph is Docket's GraphQL API (gqlgen): the schema in
// schema.graphqls, resolvers that call the clerk and the projections, and
// an http.Handler. It imports no web framework.
package graph

import (
	"github.com/evidence-parity/docket/domain/clerk"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/projections"
)

// Resolver is the root resolver.
type Resolver struct {
	Clerk *clerk.Clerk
	// Auth resolves bearer tokens (the clerk, or OIDC in front of it).
	Auth        Authenticator
	Log         ledger.Store
	Projections *projections.Projector
	Prover      Prover
}
