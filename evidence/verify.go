package evidence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/anchors/ots"
	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/answers"
	"github.com/evidence-parity/docket/ledger"
)

// VerifyOptions is what the auditor brings: the key fingerprints they
// pinned, and optionally Bitcoin block headers from a source they trust.
type VerifyOptions struct {
	Fingerprints []string
	// Headers, if set, verify the anchors' Bitcoin attestations. Headers
	// carried inside the bundle are the exporter's and are never trusted.
	Headers ots.HeaderSource
}

// Report is the outcome of verifying a binder.
type Report struct {
	Checkpoint ledger.Checkpoint
	Changes    []ChangeResult
	Anchors    []AnchorResult
	// Sample is the problem with the sample's definition, if any.
	Sample string
}

// ChangeResult is one change's verification.
type ChangeResult struct {
	ID       string
	Events   int
	Problems []string
}

// OK reports whether everything about the change holds.
func (c ChangeResult) OK() bool { return len(c.Problems) == 0 }

// AnchorResult is one anchored checkpoint's verification.
type AnchorResult struct {
	Size uint64
	// Bitcoin are the verified attestations (only with headers supplied).
	Bitcoin []ots.BitcoinProof
	// Status says what was found when nothing failed: verified, pending,
	// or not checked without headers.
	Status string
	// Problem is why the anchor fails, if it does.
	Problem string
}

// OK reports whether the whole binder holds.
func (r Report) OK() bool {
	if r.Sample != "" {
		return false
	}
	for _, c := range r.Changes {
		if !c.OK() {
			return false
		}
	}
	for _, a := range r.Anchors {
		if a.Problem != "" {
			return false
		}
	}
	return true
}

// ErrNotTrusted is returned when the binder's checkpoint is not signed by a
// pinned key: nothing else in it can then be trusted.
var ErrNotTrusted = errors.New("binder checkpoint not signed by a pinned key")

// Verify checks a bundle offline: the binder checkpoint's signature against
// the pinned fingerprints; every event's leaf hash and inclusion proof; each
// change's stream order; each change's five answers recomputed from its
// events (domain/answers) against what the binder states; the sample drawn
// as stated; and each anchor's signature, consistency proof and
// OpenTimestamps proof (and its Bitcoin attestation when headers are
// given). It returns an error only when the binder checkpoint cannot be
// trusted; everything else is reported per change and per anchor.
func Verify(ctx context.Context, b *Bundle, opts VerifyOptions) (Report, error) {
	var rep Report
	verifiers, err := pinnedVerifiers(b, opts.Fingerprints)
	if err != nil {
		return rep, err
	}
	cp, err := ledger.OpenCheckpoint([]byte(b.Checkpoint), verifiers)
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrNotTrusted, err)
	}
	if cp.Origin != b.Origin {
		return rep, fmt.Errorf("%w: the checkpoint is of log %s, the binder says %s", ErrNotTrusted, cp.Origin, b.Origin)
	}
	rep.Checkpoint = cp
	for _, c := range b.Changes {
		rep.Changes = append(rep.Changes, verifyChange(c, cp, b.Sample))
	}
	rep.Sample = checkSample(b)
	for _, a := range b.Anchors {
		rep.Anchors = append(rep.Anchors, verifyAnchor(ctx, a, cp, verifiers, opts.Headers))
	}
	return rep, nil
}

// pinnedVerifiers builds note verifiers for the bundle's keys whose SPKI
// hashes to a pinned fingerprint.
func pinnedVerifiers(b *Bundle, pins []string) (note.Verifiers, error) {
	if len(pins) == 0 {
		return nil, fmt.Errorf("%w: no fingerprint pinned", ErrNotTrusted)
	}
	var vs []note.Verifier
	for _, fp := range pins {
		fp = strings.ToLower(fp)
		for _, k := range b.Keys {
			pub, err := anchors.ParsePublicKey(k.SPKI)
			if err != nil {
				continue
			}
			if got, _ := anchors.Fingerprint(pub); got != fp {
				continue
			}
			v, err := anchors.NewNoteVerifier(b.Origin, k.SPKI)
			if err != nil {
				return nil, err
			}
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: the binder carries no key with the pinned fingerprint(s) %s", ErrNotTrusted, strings.Join(pins, ", "))
	}
	return note.VerifierList(vs...), nil
}

func verifyChange(c Change, cp ledger.Checkpoint, s SampleDef) ChangeResult {
	res := ChangeResult{ID: c.ID, Events: len(c.Events)}
	bad := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }
	if len(c.Events) == 0 {
		bad("the binder carries no events for it")
		return res
	}
	stream := domain.ChangeStream(c.ID)
	var recs []ledger.Record
	for i, e := range c.Events {
		if e.Position >= cp.Size {
			bad("event at position %d is beyond the binder checkpoint (size %d)", e.Position, cp.Size)
			continue
		}
		if err := ledger.VerifyInclusion(e.Position, cp.Size, ledger.LeafHash(e.Canonical), e.Proof, cp.Root); err != nil {
			bad("event at position %d: its bytes are not the ledger's (inclusion proof fails: %v)", e.Position, err)
			continue
		}
		ev, err := ledger.Decode(e.Canonical)
		if err != nil {
			bad("event at position %d does not decode: %v", e.Position, err)
			continue
		}
		if ev.Stream != stream {
			bad("event at position %d belongs to stream %s, not %s", e.Position, ev.Stream, stream)
			continue
		}
		if ev.Revision != uint64(i) {
			bad("event at position %d has revision %d where %d was due (events missing or reordered)", e.Position, ev.Revision, i)
		}
		if len(recs) > 0 && e.Position <= recs[len(recs)-1].Position {
			bad("event at position %d comes after position %d (events reordered)", e.Position, recs[len(recs)-1].Position)
		}
		recs = append(recs, ledger.Record{Position: e.Position, Event: ev, Canonical: e.Canonical})
	}
	if !res.OK() {
		return res
	}
	v, err := answers.BuildChangeView(recs)
	if err != nil {
		bad("its answers cannot be recomputed: %v", err)
		return res
	}
	for _, d := range diffStated(c.Stated, StatedOf(v)) {
		bad("the binder states %s", d)
	}
	// A drawn change must belong to the population it was drawn from:
	// promoted in the period, by its own events.
	if s.Mode == "sample" {
		switch {
		case v.PromotedAt == nil:
			bad("it was drawn from the changes promoted in [%s, %s), but its events show no promotion", s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
		case v.PromotedAt.Before(s.From) || !v.PromotedAt.Before(s.To):
			bad("it was drawn from the changes promoted in [%s, %s), but its events show it promoted at %s", s.From.Format(time.RFC3339), s.To.Format(time.RFC3339), v.PromotedAt.Format(time.RFC3339))
		}
	}
	return res
}

// diffStated lists where stated differs from recomputed.
func diffStated(stated, got Stated) []string {
	var out []string
	if stated.Status != got.Status {
		out = append(out, fmt.Sprintf("status %q, the events give %q", stated.Status, got.Status))
	}
	if stated.PlanHash != got.PlanHash {
		out = append(out, fmt.Sprintf("plan hash %s, the events give %s", stated.PlanHash, got.PlanHash))
	}
	if len(stated.Answers) != len(got.Answers) {
		return append(out, fmt.Sprintf("%d answers, the events give %d", len(stated.Answers), len(got.Answers)))
	}
	for i, sa := range stated.Answers {
		ga := got.Answers[i]
		if sa.Question != ga.Question || sa.Result != ga.Result || sa.Answer != ga.Answer {
			out = append(out, fmt.Sprintf("%q: %s (%q), the events give %s (%q)", sa.Question, sa.Result, sa.Answer, ga.Result, ga.Answer))
			continue
		}
		if !slices.Equal(sa.Attributes, ga.Attributes) {
			out = append(out, fmt.Sprintf("%q: attributes %v, the events give %v", sa.Question, sa.Attributes, ga.Attributes))
		}
	}
	return out
}

// checkSample checks the selection: drawn from the stated population with
// the stated seed (sample mode), and the changes carried are the ones
// selected, in order.
func checkSample(b *Bundle) string {
	s := b.Sample
	var ids []string
	for _, c := range b.Changes {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, s.Selected) {
		return fmt.Sprintf("the binder carries changes %v, the sample selected %v", ids, s.Selected)
	}
	switch s.Mode {
	case "sample":
		if len(s.Population) != len(slices.Compact(slices.Sorted(slices.Values(s.Population)))) {
			return "the population lists a change twice"
		}
		if want := answers.Sample(s.Population, s.Seed, s.Size); !slices.Equal(want, s.Selected) {
			return fmt.Sprintf("the seed %q draws %v from the population, the binder selected %v", s.Seed, want, s.Selected)
		}
	case "change":
	default:
		return fmt.Sprintf("unknown sample mode %q", s.Mode)
	}
	return ""
}

func verifyAnchor(ctx context.Context, a Anchor, cp ledger.Checkpoint, verifiers note.Verifiers, headers ots.HeaderSource) AnchorResult {
	var res AnchorResult
	acp, err := ledger.OpenCheckpoint([]byte(a.Note), verifiers)
	if err != nil {
		res.Problem = fmt.Sprintf("anchored checkpoint not signed by a pinned key: %v", err)
		return res
	}
	res.Size = acp.Size
	if acp.Origin != cp.Origin {
		res.Problem = fmt.Sprintf("the anchored checkpoint is of log %s, the binder's of %s", acp.Origin, cp.Origin)
		return res
	}
	if err := ledger.VerifyConsistency(acp.Size, cp.Size, a.Consistency, acp.Root, cp.Root); err != nil {
		res.Problem = fmt.Sprintf("the binder checkpoint does not extend the anchored checkpoint %d: %v", acp.Size, err)
		return res
	}
	proof, err := ots.Parse(a.OTS)
	if err != nil {
		res.Problem = fmt.Sprintf("OpenTimestamps proof of checkpoint %d: %v", acp.Size, err)
		return res
	}
	digest := noteDigest(a.Note)
	otsRep, err := ots.Verify(ctx, proof, digest[:], headers)
	if err != nil {
		res.Problem = fmt.Sprintf("OpenTimestamps proof of checkpoint %d: %v", acp.Size, err)
		return res
	}
	res.Bitcoin = otsRep.Verified
	switch {
	case len(otsRep.Verified) > 0:
		res.Status = fmt.Sprintf("anchored in Bitcoin block %d (%s)", otsRep.Verified[0].Height, otsRep.Verified[0].Time.Format("2006-01-02 15:04 UTC"))
	case headers != nil && len(otsRep.Failed) > 0:
		res.Problem = fmt.Sprintf("Bitcoin attestation of checkpoint %d: %v", acp.Size, errors.Join(otsRep.Failed...))
	case len(otsRep.Failed) > 0:
		res.Status = "attested in Bitcoin; not checked (no block headers supplied)"
	case len(otsRep.Pending) > 0:
		res.Status = "pending at " + strings.Join(otsRep.Pending, ", ")
	default:
		res.Status = "no Bitcoin attestation"
	}
	return res
}
