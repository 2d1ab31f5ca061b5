// Package projections holds Docket's read models: views computed from the
// log and kept in SQLite, fed by ledger.Store.Subscribe, checkpointed, and
// rebuildable from position 0 with identical results. The change view
// itself is computed by the pure package domain/answers.
package projections

import (
	"github.com/evidence-parity/docket/domain/answers"
	"github.com/evidence-parity/docket/ledger"
)

// The change view's types (domain/answers).
type (
	ChangeView    = answers.ChangeView
	Answer        = answers.Answer
	Attribute     = answers.Attribute
	SessionView   = answers.SessionView
	ExceptionView = answers.ExceptionView
	decoded       = answers.Decoded
)

// Results of an attribute.
const (
	Pass      = answers.Pass
	Fail      = answers.Fail
	Exception = answers.Exception
	Pending   = answers.Pending
)

// BuildChangeView folds a change stream's records into its view.
func BuildChangeView(recs []ledger.Record) (*ChangeView, error) { return answers.BuildChangeView(recs) }

func buildChangeView(recs []decoded) (*ChangeView, error) { return answers.BuildDecoded(recs) }
