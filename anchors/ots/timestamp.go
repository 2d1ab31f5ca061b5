package ots

import (
	"bytes"
	"errors"
	"slices"
)

// Timestamp is a node of a proof tree: a message and what follows from it,
// attestations that the message existed and operations leading to further
// messages. Branches keep the order they were read or added in.
type Timestamp struct {
	Msg      []byte
	Branches []Branch
}

// Branch is one edge out of a timestamp node: exactly one of Attestation (a
// leaf) or Op with the node it leads to (Next, whose Msg is Op applied to the
// parent's Msg).
type Branch struct {
	Attestation *Attestation
	Op          Op
	Next        *Timestamp
}

// New returns an empty timestamp of msg.
func New(msg []byte) *Timestamp { return &Timestamp{Msg: slices.Clone(msg)} }

// Add returns the node that op leads to from t, adding the branch unless an
// equal operation is already there.
func (t *Timestamp) Add(op Op) (*Timestamp, error) {
	for _, b := range t.Branches {
		if b.Attestation == nil && b.Op.Equal(op) {
			return b.Next, nil
		}
	}
	msg, err := op.Apply(t.Msg)
	if err != nil {
		return nil, err
	}
	next := &Timestamp{Msg: msg}
	t.Branches = append(t.Branches, Branch{Op: op, Next: next})
	return next, nil
}

// Attest adds an attestation to t unless an equal one is already there.
func (t *Timestamp) Attest(a Attestation) {
	for _, b := range t.Branches {
		if b.Attestation != nil && b.Attestation.Equal(a) {
			return
		}
	}
	t.Branches = append(t.Branches, Branch{Attestation: &a})
}

// Merge adds what other proves about the same message to t: attestations t
// lacks, and operations, merged recursively where t already has them.
func (t *Timestamp) Merge(other *Timestamp) error {
	if !bytes.Equal(t.Msg, other.Msg) {
		return errors.New("ots: cannot merge timestamps of different messages")
	}
	for _, b := range other.Branches {
		if b.Attestation != nil {
			t.Attest(*b.Attestation)
			continue
		}
		next, err := t.Add(b.Op)
		if err != nil {
			return err
		}
		if err := next.Merge(b.Next); err != nil {
			return err
		}
	}
	return nil
}

// Attested is an attestation together with the message it attests.
type Attested struct {
	Msg         []byte
	Attestation Attestation
}

// Attestations lists every attestation in the tree, depth first in branch
// order, with the message each one attests.
func (t *Timestamp) Attestations() []Attested {
	var out []Attested
	t.walk(func(n *Timestamp) {
		for _, b := range n.Branches {
			if b.Attestation != nil {
				out = append(out, Attested{Msg: n.Msg, Attestation: *b.Attestation})
			}
		}
	})
	return out
}

func (t *Timestamp) walk(f func(*Timestamp)) {
	f(t)
	for _, b := range t.Branches {
		if b.Next != nil {
			b.Next.walk(f)
		}
	}
}

// Complete reports whether the tree holds a Bitcoin attestation.
func (t *Timestamp) Complete() bool {
	for _, a := range t.Attestations() {
		if a.Attestation.Kind == Bitcoin {
			return true
		}
	}
	return false
}

// ParseTimestamp reads a serialized timestamp of msg (no magic, no file
// digest: what a calendar answers) and requires that nothing follows it.
func ParseTimestamp(b, msg []byte) (*Timestamp, error) {
	r := &reader{b: b, budget: maxTotalMsg}
	t, err := readTimestamp(r, slices.Clone(msg), MaxDepth)
	if err != nil {
		return nil, err
	}
	if !r.eof() {
		return nil, invalidf("%d bytes of trailing garbage after the timestamp", len(r.b)-r.pos)
	}
	return t, nil
}

func readTimestamp(r *reader, msg []byte, depth int) (*Timestamp, error) {
	if depth <= 0 {
		return nil, invalidf("timestamp nested deeper than %d at byte %d", MaxDepth, r.pos)
	}
	if r.budget -= len(msg); r.budget < 0 {
		return nil, invalidf("timestamp's messages exceed %d bytes in all", maxTotalMsg)
	}
	t := &Timestamp{Msg: msg}
	for {
		tag, err := r.byte()
		if err != nil {
			return nil, err
		}
		more := tag == 0xff
		if more {
			if tag, err = r.byte(); err != nil {
				return nil, err
			}
		}
		if tag == 0x00 {
			a, err := readAttestation(r)
			if err != nil {
				return nil, err
			}
			t.Branches = append(t.Branches, Branch{Attestation: &a})
		} else {
			op, err := readOp(r, tag)
			if err != nil {
				return nil, err
			}
			out, err := op.Apply(msg)
			if err != nil {
				return nil, err
			}
			next, err := readTimestamp(r, out, depth-1)
			if err != nil {
				return nil, err
			}
			t.Branches = append(t.Branches, Branch{Op: op, Next: next})
		}
		if !more {
			return t, nil
		}
	}
}

// Serialize writes the timestamp without magic or file digest, as a
// calendar answers it.
func (t *Timestamp) Serialize() ([]byte, error) { return t.appendTo(nil) }

func (t *Timestamp) appendTo(b []byte) ([]byte, error) {
	if len(t.Branches) == 0 {
		return nil, errors.New("ots: an empty timestamp cannot be serialized")
	}
	for i, br := range t.Branches {
		if i < len(t.Branches)-1 {
			b = append(b, 0xff)
		}
		if br.Attestation != nil {
			b = append(b, 0x00)
			b = br.Attestation.appendTo(b)
			continue
		}
		b = br.Op.appendTo(b)
		var err error
		if b, err = br.Next.appendTo(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// depth is the nesting of the tree: 1 for a node with only attestations.
func (t *Timestamp) depth() int {
	d := 0
	for _, b := range t.Branches {
		if b.Next != nil {
			d = max(d, b.Next.depth())
		}
	}
	return d + 1
}
