package evidence_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidence-parity/docket/anchors/anchoring"
	"github.com/evidence-parity/docket/anchors/ots"
	"github.com/evidence-parity/docket/anchors/ots/otstest"
	"github.com/evidence-parity/docket/domain/answers"
	"github.com/evidence-parity/docket/domain/clerk/clerktest"
	"github.com/evidence-parity/docket/evidence"
)

// The ledger is real SQLite (clerktest); the calendars and Bitcoin are
// otstest stand-ins on 127.0.0.1, which these machines cannot reach.

// recordChanges records n promoted changes, every third with a resolved
// deviation, and returns their ids.
func recordChanges(t testing.TB, w *clerktest.World, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		ids = append(ids, w.Promoted(t, i%3 == 1))
		w.Advance(time.Hour)
	}
	return ids
}

// exported is a bundle drawn from a fresh ledger, with one anchor mined on
// the stand-in chain, and the auditor's pins and headers.
type exported struct {
	w       *clerktest.World
	bundle  *evidence.Bundle
	headers *ots.Headers
}

func export(t *testing.T) exported {
	t.Helper()
	ctx := context.Background()
	w := clerktest.NewWorld(t)
	ids := recordChanges(t, w, 5)
	if _, err := w.Store.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// Anchor the checkpoint, then grow the ledger past it.
	chain := &otstest.Chain{}
	a, b := otstest.NewCalendar(t, chain), otstest.NewCalendar(t, chain)
	dir := t.TempDir()
	an, err := anchoring.New(w.Store, anchoring.Config{Dir: dir, Calendars: []string{a.URL, b.URL}, Client: &ots.Client{AllowHTTP: true}})
	if err != nil {
		t.Fatal(err)
	}
	anc, err := an.AnchorNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Mine()
	b.Mine()
	if _, err := an.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, recordChanges(t, w, 1)...)
	if _, err := w.Store.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	note, proof, err := anchoring.Proof(dir, anc.Size)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := proof.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	headers := chain.ParsedHeaders()
	sample := evidence.SampleDef{Mode: "sample", From: w.Now().Add(-48 * time.Hour), To: w.Now().Add(time.Hour), Seed: "audit-seed", Size: 4,
		Population: ids, Selected: answers.Sample(ids, "audit-seed", 4)}
	bundle, err := evidence.Build(ctx, w.Store, evidence.Request{Sample: sample, Anchors: []evidence.AnchorFile{{Note: note, OTS: raw}}})
	if err != nil {
		t.Fatal(err)
	}
	return exported{w: w, bundle: bundle, headers: headers}
}

// clone deep-copies a bundle through its JSON, as a tamperer would edit it.
func clone(t *testing.T, b *evidence.Bundle) *evidence.Bundle {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Write(&buf); err != nil {
		t.Fatal(err)
	}
	c, err := evidence.ReadBundle(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyIntactBinder(t *testing.T) {
	e := export(t)
	rep, err := evidence.Verify(context.Background(), clone(t, e.bundle), evidence.VerifyOptions{Fingerprints: []string{e.w.FP}, Headers: e.headers})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("intact binder fails: %+v", rep)
	}
	if len(rep.Changes) != 4 || len(rep.Anchors) != 1 || len(rep.Anchors[0].Bitcoin) == 0 {
		t.Fatalf("report: %+v", rep)
	}
	for _, c := range rep.Changes {
		if c.Events < 10 {
			t.Fatalf("change %s carries %d events", c.ID, c.Events)
		}
	}
	// Without headers the anchor is reported, not failed.
	rep, _ = evidence.Verify(context.Background(), e.bundle, evidence.VerifyOptions{Fingerprints: []string{e.w.FP}})
	if !rep.OK() || !strings.Contains(rep.Anchors[0].Status, "not checked") {
		t.Fatalf("without headers: %+v", rep.Anchors)
	}
}

func TestVerifyCatchesTampering(t *testing.T) {
	e := export(t)
	other := export(t) // another ledger, another key
	ctx := context.Background()
	opts := evidence.VerifyOptions{Fingerprints: []string{e.w.FP}, Headers: e.headers}
	type check func(t *testing.T, rep evidence.Report, err error)
	changeFails := func(want string) check {
		return func(t *testing.T, rep evidence.Report, err error) {
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range rep.Changes {
				for _, p := range c.Problems {
					if strings.Contains(p, want) {
						if rep.OK() {
							t.Fatal("a failing change left the binder OK")
						}
						return
					}
				}
			}
			t.Fatalf("no change problem says %q: %+v", want, rep.Changes)
		}
	}
	untrusted := func(t *testing.T, rep evidence.Report, err error) {
		if !errors.Is(err, evidence.ErrNotTrusted) {
			t.Fatalf("got %v, want ErrNotTrusted", err)
		}
	}
	for _, c := range []struct {
		name   string
		tamper func(b *evidence.Bundle)
		check  check
	}{
		{"edit an event", func(b *evidence.Bundle) {
			ev := &b.Changes[0].Events[2]
			ev.Canonical = bytes.Replace(ev.Canonical, []byte(`"bob"`), []byte(`"eve"`), 1)
		}, changeFails("inclusion proof fails")},
		{"drop an event", func(b *evidence.Bundle) {
			evs := b.Changes[1].Events
			b.Changes[1].Events = append(evs[:3:3], evs[4:]...)
		}, changeFails("events missing or reordered")},
		{"drop the last event", func(b *evidence.Bundle) {
			b.Changes[1].Events = b.Changes[1].Events[:len(b.Changes[1].Events)-1]
		}, changeFails("the binder states")},
		{"change a stated answer", func(b *evidence.Bundle) {
			b.Changes[2].Stated.Answers[3].Result = "pass"
			b.Changes[2].Stated.Answers[3].Attributes[0].Result = "fail"
		}, changeFails("the binder states")},
		{"reorder events", func(b *evidence.Bundle) {
			evs := b.Changes[0].Events
			evs[4], evs[5] = evs[5], evs[4]
		}, changeFails("reordered")},
		{"swap the checkpoint for another ledger's", func(b *evidence.Bundle) {
			b.Checkpoint = other.bundle.Checkpoint
		}, untrusted},
		{"sign with another key", func(b *evidence.Bundle) {
			b.Checkpoint, b.Keys, b.Origin = other.bundle.Checkpoint, other.bundle.Keys, other.bundle.Origin
		}, untrusted},
		{"corrupt the .ots proof", func(b *evidence.Bundle) {
			b.Anchors[0].OTS[len(b.Anchors[0].OTS)-3] ^= 0xff
		}, func(t *testing.T, rep evidence.Report, err error) {
			if err != nil || rep.OK() || rep.Anchors[0].Problem == "" {
				t.Fatalf("corrupt ots: %v %+v", err, rep.Anchors)
			}
		}},
		{"anchor another note", func(b *evidence.Bundle) {
			b.Anchors[0].Note = other.bundle.Anchors[0].Note
		}, func(t *testing.T, rep evidence.Report, err error) {
			if err != nil || rep.OK() || !strings.Contains(rep.Anchors[0].Problem, "not signed by a pinned key") {
				t.Fatalf("foreign anchor: %v %+v", err, rep.Anchors)
			}
		}},
		{"change the seed", func(b *evidence.Bundle) {
			// A seed that draws another sample: with a small population
			// some seeds draw the same one, which is no tampering.
			for i := 0; ; i++ {
				seed := fmt.Sprintf("another-seed-%d", i)
				if !slices.Equal(answers.Sample(b.Sample.Population, seed, b.Sample.Size), b.Sample.Selected) {
					b.Sample.Seed = seed
					return
				}
			}
		}, func(t *testing.T, rep evidence.Report, err error) {
			if err != nil || rep.OK() || !strings.Contains(rep.Sample, "draws") {
				t.Fatalf("seed: %v %q", err, rep.Sample)
			}
		}},
		{"claim a period the sampled changes were not promoted in", func(b *evidence.Bundle) {
			b.Sample.To = b.Sample.From.Add(time.Second)
		}, changeFails("but its events show it promoted at")},
		{"swap a sampled change for another", func(b *evidence.Bundle) {
			b.Changes[0], b.Changes[1] = b.Changes[1], b.Changes[0]
		}, func(t *testing.T, rep evidence.Report, err error) {
			if err != nil || rep.OK() || rep.Sample == "" {
				t.Fatalf("order: %v %q", err, rep.Sample)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := clone(t, e.bundle)
			c.tamper(b)
			rep, err := evidence.Verify(ctx, b, opts)
			c.check(t, rep, err)
		})
	}
	t.Run("headers of another block", func(t *testing.T) {
		rep, err := evidence.Verify(ctx, e.bundle, evidence.VerifyOptions{Fingerprints: []string{e.w.FP}, Headers: other.headers})
		if err != nil || rep.OK() || rep.Anchors[0].Problem == "" {
			t.Fatalf("%v %+v", err, rep.Anchors)
		}
	})
	t.Run("no pinned key", func(t *testing.T) {
		_, err := evidence.Verify(ctx, e.bundle, evidence.VerifyOptions{Fingerprints: []string{other.w.FP}})
		if !errors.Is(err, evidence.ErrNotTrusted) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestReadBundleRefusesWhatIsNotOne(t *testing.T) {
	for name, in := range map[string]string{
		"garbage":       "not json",
		"wrong format":  `{"format":"something","version":1}`,
		"wrong version": `{"format":"docket-evidence-bundle","version":2}`,
		"unknown field": `{"format":"docket-evidence-bundle","version":1,"extra":true}`,
		"two documents": `{"format":"docket-evidence-bundle","version":1} {}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := evidence.ReadBundle(strings.NewReader(in)); !errors.Is(err, evidence.ErrMalformed) {
				t.Fatalf("got %v", err)
			}
		})
	}
}
