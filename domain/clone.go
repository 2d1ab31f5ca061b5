package domain

import (
	"maps"
	"slices"
)

// Clone methods copy a folded state deeply enough that applying events to
// the copy leaves the original as it was: every map and slice Apply
// changes, and every value those maps point to. What Apply only replaces
// (the plan, its scope, the approval) is shared. The application service
// keeps folded states and hands out copies, so a stream is folded once.

// Clone returns a copy of c that Apply may change independently.
func (c *Change) Clone() *Change {
	d := *c
	d.Views = maps.Clone(c.Views)
	if c.Sessions != nil {
		d.Sessions = make(map[string]*Session, len(c.Sessions))
		for id, s := range c.Sessions {
			s2 := *s
			d.Sessions[id] = &s2
		}
	}
	if c.Exceptions != nil {
		d.Exceptions = make(map[string]*Exception, len(c.Exceptions))
		for id, x := range c.Exceptions {
			x2 := *x
			d.Exceptions[id] = &x2
		}
	}
	// Clipped, so an append to either copy never writes into the other's.
	d.Evidence = slices.Clip(c.Evidence)
	return &d
}

// Clone returns a copy of p that Apply may change independently.
func (p *Principal) Clone() *Principal {
	d := *p
	d.Roles = maps.Clone(p.Roles)
	d.Tokens = maps.Clone(p.Tokens)
	return &d
}

// Clone returns a copy of a that Apply may change independently.
func (a *Agent) Clone() *Agent {
	d := *a
	d.Keys = maps.Clone(a.Keys)
	return &d
}

// Clone returns a copy of f that Apply may change independently.
func (f *Freezes) Clone() *Freezes {
	return &Freezes{Active: maps.Clone(f.Active)}
}
