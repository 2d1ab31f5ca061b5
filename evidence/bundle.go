// Package evidence is the evidence binder: the bundle (a versioned JSON
// document an auditor can check offline), the PDF that presents it with the
// bundle attached, and the offline verification.
//
// The bundle carries, for each change of a sample, every event of the
// change's stream as the ledger stored it (canonical bytes) with its
// inclusion proof to one signed checkpoint; that checkpoint; the anchored
// checkpoints with consistency proofs to it and their OpenTimestamps proofs;
// the public keys that signed; and Bitcoin block headers when known.
// Verification (Verify) depends only on the ledger's formats, the anchors
// and the pure domain rules (domain/answers): it trusts neither the server
// that exported the binder nor the PDF's text, and recomputes each change's
// answers from the signed events to compare them with what the binder
// states.
package evidence

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Format and Version identify the bundle schema.
const (
	Format  = "docket-evidence-bundle"
	Version = 1
)

// Bundle is the machine-readable binder. Byte strings are base64 in JSON.
type Bundle struct {
	Format    string    `json:"format"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	// Origin is the ledger's checkpoint origin, "docket/<ledger id>".
	Origin string `json:"origin"`
	// Checkpoint is the binder checkpoint: a signed note every event proof
	// and anchor consistency proof leads to.
	Checkpoint string `json:"checkpoint"`
	// Keys are the public keys that signed the ledger's checkpoints; the
	// auditor pins fingerprints, never these.
	Keys   []Key     `json:"keys"`
	Sample SampleDef `json:"sample"`
	// Changes are the sampled changes, in sample order.
	Changes []Change `json:"changes"`
	// Anchors are the anchored checkpoints no larger than the binder's.
	Anchors []Anchor `json:"anchors"`
	// BitcoinHeaders are block headers ("HEIGHT HEX" lines, see
	// ots.ParseHeaders) for the anchors' attestations, when the exporter
	// had them.
	BitcoinHeaders []string `json:"bitcoinHeaders,omitempty"`
}

// Key is a checkpoint signing key.
type Key struct {
	Fingerprint string `json:"fingerprint"`
	// SPKI is the DER SubjectPublicKeyInfo.
	SPKI []byte `json:"spki"`
}

// SampleDef says what was sampled and how.
type SampleDef struct {
	// Mode is "sample" (drawn from the population with Seed) or "change"
	// (changes named by the exporter).
	Mode string `json:"mode"`
	// From and To bound the population: changes promoted in [From, To).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Seed string    `json:"seed,omitempty"`
	Size int       `json:"size"`
	// Population lists every change id promoted in the period, as the read
	// models had them at the binder checkpoint.
	Population []string `json:"population"`
	// Selected are the ids drawn, in rank order.
	Selected []string `json:"selected"`
	// CheckpointSize is the size of the checkpoint the sample was drawn at.
	CheckpointSize uint64 `json:"checkpointSize"`
}

// Change is one sampled change: its events and what the binder states.
type Change struct {
	ID     string  `json:"id"`
	Stated Stated  `json:"stated"`
	Events []Event `json:"events"`
}

// Stated is what the binder states about a change: its status and the five
// answers with each attribute's result.
type Stated struct {
	Status   string         `json:"status"`
	PlanHash string         `json:"planHash"`
	Answers  []StatedAnswer `json:"answers"`
}

// StatedAnswer is one CC8.1 answer as the binder states it.
type StatedAnswer struct {
	Question   string            `json:"question"`
	Answer     string            `json:"answer"`
	Result     string            `json:"result"`
	Attributes []StatedAttribute `json:"attributes"`
}

// StatedAttribute is one attribute's result.
type StatedAttribute struct {
	Name   string `json:"name"`
	Result string `json:"result"`
}

// Event is one event as the ledger stored it, with its inclusion proof to
// the binder checkpoint (RFC 6962 audit path, leaf to root).
type Event struct {
	Position  uint64   `json:"position"`
	Canonical []byte   `json:"canonical"`
	Proof     [][]byte `json:"proof"`
}

// Anchor is an anchored checkpoint: its signed note, a consistency proof
// from it to the binder checkpoint, and the OpenTimestamps proof of the
// note's SHA-256.
type Anchor struct {
	Note        string   `json:"note"`
	Consistency [][]byte `json:"consistency"`
	OTS         []byte   `json:"ots"`
}

// MaxBundleSize bounds a bundle Docket reads.
const MaxBundleSize = 256 << 20

// ErrMalformed is wrapped by errors reading a bundle that is not one.
var ErrMalformed = errors.New("malformed bundle")

// ReadBundle reads and checks the envelope of a bundle: JSON, the format
// and a version this reader knows; unknown fields are refused.
func ReadBundle(r io.Reader) (*Bundle, error) {
	dec := json.NewDecoder(io.LimitReader(r, MaxBundleSize+1))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the bundle", ErrMalformed)
	}
	if b.Format != Format {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrMalformed, b.Format, Format)
	}
	if b.Version != Version {
		return nil, fmt.Errorf("%w: version %d; this reader knows version %d", ErrMalformed, b.Version, Version)
	}
	return &b, nil
}

// Write writes the bundle as indented JSON.
func (b *Bundle) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(b)
}
