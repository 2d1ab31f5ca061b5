package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk/clerktest"
	"github.com/evidence-parity/docket/projections"
)

// story records three changes: one clean and promoted, one with a resolved
// deviation, promoted, and one rubber-stamped and not yet promoted.
func story(t testing.TB, w *clerktest.World) (clean, deviated, stamped string) {
	t.Helper()
	ctx := context.Background()
	k := w.Clerk
	clean, deviated = w.Promoted(t, false), w.Promoted(t, true)
	id, hash, _ := k.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan())
	k.ViewPlan(ctx, w.Bob, id)
	w.Advance(3 * time.Second)
	if err := k.Approve(ctx, w.Bob, id, hash, ""); err != nil {
		t.Fatal(err)
	}
	return clean, deviated, id
}

func answer(t testing.TB, v *projections.ChangeView, q int) projections.Answer {
	t.Helper()
	if len(v.Answers) != 5 {
		t.Fatalf("%d answers, want 5", len(v.Answers))
	}
	return v.Answers[q]
}

func attribute(t *testing.T, a projections.Answer, name string) projections.Attribute {
	t.Helper()
	for _, at := range a.Attributes {
		if at.Name == name {
			return at
		}
	}
	t.Fatalf("answer %q has no attribute %s", a.Question, name)
	return projections.Attribute{}
}

func TestLiveProjectionAnswersAndRebuild(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	dir := t.TempDir()
	live, err := projections.Open(ctx, filepath.Join(dir, "live.db"), w.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- live.Run(runCtx) }()

	clean, deviated, stamped := story(t, w)
	size, _, _ := w.Store.Head(ctx)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if pos, _ := live.Position(ctx); pos == size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("live projection did not catch up")
		}
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run ended with %v", err)
	}

	v, err := live.Change(ctx, clean)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range v.Answers {
		if a.Result != projections.Pass {
			t.Errorf("clean change, answer %d (%s): %s %+v", i, a.Question, a.Result, a.Attributes)
		}
	}
	if a := attribute(t, answer(t, v, 0), "approved_before_first_action"); len(a.Events) != 2 {
		t.Errorf("approved_before_first_action cites %v, want the approval and the first action", a.Events)
	}
	v, _ = live.Change(ctx, deviated)
	impl := answer(t, v, 2)
	if at := attribute(t, impl, "every_action_in_scope"); at.Result != projections.Exception || len(at.Events) != 3 {
		t.Errorf("deviated change: %+v, want exception citing the action, the exception and its resolution", at)
	}
	v, _ = live.Change(ctx, stamped)
	if at := attribute(t, answer(t, v, 0), "review_depth"); at.Result != projections.Fail {
		t.Errorf("3-second approval: %+v, want a rubber-stamp failure", at)
	}
	if tested := answer(t, v, 3); tested.Result != projections.Pending {
		t.Errorf("unpromoted change tested answer %s, want pending", tested.Result)
	}

	all, err := live.Exceptions(ctx, false, 10)
	if err != nil || len(all) != 1 || all[0].ChangeID != deviated || !all[0].Exception.Resolved || all[0].Exception.Kind != "deviation" {
		t.Fatalf("exceptions: %+v %v, want the deviated change's resolved deviation", all, err)
	}
	if open, _ := live.Exceptions(ctx, true, 10); len(open) != 0 {
		t.Fatalf("open exceptions: %+v, want none", open)
	}

	want, err := live.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// From zero into a fresh file.
	fresh, err := projections.Open(ctx, filepath.Join(dir, "fresh.db"), w.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := fresh.Dump(ctx); !slices.Equal(got, want) {
		t.Fatalf("fresh projection differs from live:\n%v\n%v", got, want)
	}
	// Rebuild in place, and replay over existing rows: the same.
	if err := live.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := live.Dump(ctx); !slices.Equal(got, want) {
		t.Fatal("rebuilt projection differs from live")
	}
	if err := live.Replay(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := live.Dump(ctx); !slices.Equal(got, want) {
		t.Fatal("replaying the log over the projection changed it")
	}

	// A projector restarted on its file meets streams mid-way: it folds
	// them from the store and ends where a rebuild does.
	live.Close()
	again, err := projections.Open(ctx, filepath.Join(dir, "live.db"), w.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	ses, err := w.Clerk.RequestSession(ctx, w.Agent, stamped)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Clerk.RecordAction(ctx, ses.Credential, "edit", []domain.ResourceUse{{Resource: "file:github.com/acme/api/src/billing/total.go", Verb: domain.Write}}, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := again.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	want, _ = fresh.Dump(ctx)
	if got, _ := again.Dump(ctx); !slices.Equal(got, want) {
		t.Fatalf("restarted projection differs from a rebuild:\n%v\n%v", got, want)
	}
	if v, _ := again.Change(ctx, stamped); v == nil || v.Actions != 1 {
		t.Fatalf("stamped change after its first action: %+v", v)
	}
}

func TestPagingOrdersByTime(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	// Submission times with and without fractions of a second, which
	// RFC 3339 text would sort wrongly.
	var ids []string
	for _, step := range []time.Duration{time.Second, 100 * time.Millisecond, 900 * time.Millisecond, time.Second} {
		w.Advance(step)
		id, _, err := w.Clerk.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	p, err := projections.Open(ctx, filepath.Join(t.TempDir(), "p.db"), w.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		page, err := p.List(ctx, projections.Filter{}, 1, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Views {
			got = append(got, v.ID)
		}
		if !page.HasNext {
			break
		}
		after = page.EndCursor
	}
	slices.Reverse(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("pages gave %v, want newest first %v", got, ids)
	}
}

// TestFormatOfTheReadModels: new read models are of this build's format;
// read models stored by another build (no format recorded, or another
// one) are reported so and left as they are when opened, and a rebuild
// makes them current, ending where a fresh projection does.
func TestFormatOfTheReadModels(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	story(t, w)
	path := filepath.Join(t.TempDir(), "p.db")
	for _, older := range []string{
		`DELETE FROM meta WHERE key = 'format'`,           // before the format was kept
		`UPDATE meta SET value = 99 WHERE key = 'format'`, // another build's
	} {
		p, err := projections.Open(ctx, path, w.Store, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if current, err := p.Current(ctx); err != nil || !current {
			t.Fatalf("read models projected by this build: current %v (%v)", current, err)
		}
		want, _ := p.Dump(ctx)
		pos, _ := p.Position(ctx)
		p.Close()
		// As an older build would have left them: another format, and a
		// view whose answers say something else.
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(older + `; UPDATE changes SET view = '{}'`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		p, err = projections.Open(ctx, path, w.Store, nil)
		if err != nil {
			t.Fatal(err)
		}
		if current, err := p.Current(ctx); err != nil || current {
			t.Fatalf("%s: current %v (%v), want false", older, current, err)
		}
		if got, _ := p.Position(ctx); got != pos {
			t.Fatalf("%s: opening moved the position from %d to %d", older, pos, got)
		}
		if err := p.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		if current, _ := p.Current(ctx); !current {
			t.Fatalf("%s: not current after a rebuild", older)
		}
		if got, _ := p.Dump(ctx); !slices.Equal(got, want) {
			t.Fatalf("%s: rebuilt:\n%v\nwant\n%v", older, got, want)
		}
		p.Close()
	}
}
