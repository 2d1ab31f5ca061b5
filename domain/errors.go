package domain

import "errors"

// Error categories; every decision error wraps exactly one, and the API maps
// it to its code once, at the boundary.
var (
	ErrInvalidInput    = errors.New("invalid input")
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrOutOfScope      = errors.New("out of scope")
	ErrFrozen          = errors.New("change freeze")
	ErrGateFailed      = errors.New("verification gate failed")
)

// Specific outcomes, each wrapping its category.
var (
	ErrAgentCannotApprove = wrap(ErrForbidden, "agents never approve")
	ErrNotApprover        = wrap(ErrForbidden, "not an approver")
	ErrSelfApproval       = wrap(ErrForbidden, "segregation of duties: the approver requested this change")
	ErrNoAuthority        = wrap(ErrForbidden, "the approver's authority does not cover the plan's scope")
	ErrStalePlan          = wrap(ErrConflict, "the plan was revised: approve the current plan hash")
	ErrAlreadyDecided     = wrap(ErrConflict, "the plan was already approved or rejected")
	ErrCredentialDead     = wrap(ErrUnauthenticated, "session credential is revoked, ended, expired or wrong")
	ErrPromoted           = wrap(ErrConflict, "the change is already promoted")
)

type wrapped struct {
	cat error
	msg string
}

func wrap(cat error, msg string) error { return &wrapped{cat: cat, msg: msg} }
func (w *wrapped) Error() string       { return w.msg }
func (w *wrapped) Unwrap() error       { return w.cat }
