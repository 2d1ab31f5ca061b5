package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// shapeLimit refuses operations nested deeper than MaxDepth or selecting
// more than MaxFields fields (aliases included) before they run: cheap
// fields repeated under many aliases slip past a cost limit.
type shapeLimit struct {
	MaxDepth, MaxFields int
}

var (
	_ graphql.HandlerExtension        = shapeLimit{}
	_ graphql.OperationContextMutator = shapeLimit{}
)

func (shapeLimit) ExtensionName() string                   { return "ShapeLimit" }
func (shapeLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l shapeLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	fields := 0
	depth := l.measure(oc.Operation.SelectionSet, oc.Doc, 1, &fields, map[string]bool{})
	switch {
	case depth > l.MaxDepth:
		return &gqlerror.Error{Message: fmt.Sprintf("operation nested %d deep, limit %d", depth, l.MaxDepth), Extensions: map[string]any{"code": "INVALID_INPUT"}}
	case fields > l.MaxFields:
		return &gqlerror.Error{Message: fmt.Sprintf("operation selects %d fields, limit %d", fields, l.MaxFields), Extensions: map[string]any{"code": "INVALID_INPUT"}}
	}
	return nil
}

// measure returns the depth of a selection set and adds its fields to n.
// Fragments are followed once per path (validation already refused cycles).
func (l shapeLimit) measure(set ast.SelectionSet, doc *ast.QueryDocument, depth int, n *int, seen map[string]bool) int {
	deepest := depth - 1
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			*n++
			d = depth
			if len(s.SelectionSet) > 0 {
				d = l.measure(s.SelectionSet, doc, depth+1, n, seen)
			}
		case *ast.InlineFragment:
			d = l.measure(s.SelectionSet, doc, depth, n, seen)
		case *ast.FragmentSpread:
			if f := doc.Fragments.ForName(s.Name); f != nil && !seen[s.Name] {
				seen[s.Name] = true
				d = l.measure(f.SelectionSet, doc, depth, n, seen)
				delete(seen, s.Name)
			}
		}
		if d > deepest {
			deepest = d
		}
		if *n > l.MaxFields || deepest > l.MaxDepth {
			return deepest // stop early on hostile documents
		}
	}
	return deepest
}
