package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/ledger/storetest"
)

type execer interface {
	Exec(query string, args ...any) (sql.Result, error)
	QueryRow(query string, args ...any) *sql.Row
	Query(query string, args ...any) (*sql.Rows, error)
}

// tamper edits a closed ledger file with plain SQL, as an attacker with
// database access would.
func tamper(t *testing.T, path string, edit func(db execer)) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	edit(db)
}

func exec(t *testing.T, db execer, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func canonicalAt(t *testing.T, db execer, pos int) []byte {
	t.Helper()
	var c []byte
	if err := db.QueryRow(`SELECT canonical FROM events WHERE position = ?`, pos).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func mustSPKI(t *testing.T, s anchors.Signer) []byte {
	t.Helper()
	der, err := anchors.SPKI(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func noteList(v ...note.Verifier) note.Verifiers { return note.VerifierList(v...) }

// rehashTree recomputes every stored tree node from the stored leaves, as a
// thorough attacker would after rewriting events.
func rehashTree(t *testing.T, db execer) {
	t.Helper()
	rows, err := db.Query(`SELECT leaf FROM events ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	var leaves [][]byte
	for rows.Next() {
		var h []byte
		rows.Scan(&h)
		leaves = append(leaves, h)
	}
	rows.Close()
	exec(t, db, `DELETE FROM tree`)
	r := ledger.RangeFactory.NewEmptyRange(0)
	for _, h := range leaves {
		r.Append(h, func(id compact.NodeID, hash []byte) {
			if id.Level >= 4 {
				exec(t, db, `INSERT INTO tree (level, idx, hash) VALUES (?, ?, ?)`, id.Level, int64(id.Index), hash)
			}
		})
	}
}

// truncateStreamIndex cuts the stream index back to the first size
// events, as a thorough attacker truncating the log would.
func truncateStreamIndex(t *testing.T, db execer, size int) {
	t.Helper()
	exec(t, db, `DELETE FROM streams WHERE position >= ?`, size)
	exec(t, db, `UPDATE meta SET value = ? WHERE key = 'streams_indexed'`, fmt.Sprint(size))
}

// original is a closed ledger of 40 events, one checkpoint after each.
type original struct {
	*fixture
	notes [][]byte
}

func buildOriginal(t *testing.T) original {
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	sizes := make([]int, 40)
	for i := range sizes {
		sizes[i] = 1
	}
	notes := fill(t, s, sizes...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return original{fixture: f, notes: notes}
}

func (o original) copy(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "ledger.db")
	for _, suffix := range []string{"", "-wal"} {
		in, err := os.Open(o.db + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(dst + suffix)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(out, in)
		in.Close()
		out.Close()
	}
	return dst
}

func verifyFile(t *testing.T, path string, fps []string, trusted [][]byte) (ledger.Report, error) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.Verify(context.Background(), fps, trusted)
}

func TestVerifyIntact(t *testing.T) {
	o := buildOriginal(t)
	rep, err := verifyFile(t, o.copy(t), []string{o.fp}, o.notes[20:21])
	if err != nil {
		t.Fatalf("intact ledger: %v", err)
	}
	if rep.Events != 40 || rep.Checkpoints != 40 || rep.Latest.Size != 40 {
		t.Errorf("report %+v, want 40 events, 40 checkpoints, latest size 40", rep)
	}
}

func TestVerifyCatchesTampering(t *testing.T) {
	o := buildOriginal(t)
	other, err := anchors.OpenFileSigner(filepath.Join(t.TempDir(), "attacker.pem"), true)
	if err != nil {
		t.Fatal(err)
	}
	otherFP, _ := anchors.Fingerprint(other.Public())
	cases := []struct {
		name     string
		edit     func(t *testing.T, db execer)
		trusted  [][]byte
		position int64
		reason   string
	}{
		{
			name: "one byte of one event changed",
			edit: func(t *testing.T, db execer) {
				c := canonicalAt(t, db, 17)
				c[bytes.Index(c, []byte(`"Step"`))+3] = 'o'
				exec(t, db, `UPDATE events SET canonical = ? WHERE position = 17`, c)
			},
			position: 17, reason: "event altered",
		},
		{
			name:     "event deleted",
			edit:     func(t *testing.T, db execer) { exec(t, db, `DELETE FROM events WHERE position = 17`) },
			position: 17, reason: "event missing",
		},
		{
			name: "event inserted",
			edit: func(t *testing.T, db execer) {
				exec(t, db, `UPDATE events SET position = -(position + 1) WHERE position >= 17`)
				exec(t, db, `UPDATE events SET position = -position WHERE position < 0`)
				forged := []byte(`{"actor":{"id":"mallory","kind":"human"},"data":{},"id":"forged-1","revision":0,"stream":"forged","time":"2026-01-01T00:00:00Z","type":"PlanApproved"}`)
				exec(t, db, `INSERT INTO events (position, id, stream, revision, leaf, canonical) VALUES (17, 'forged-1', 'forged', 0, ?, ?)`, ledger.LeafHash(forged), forged)
				rehashTree(t, db)
			},
			position: 17, reason: "do not match the signed checkpoint",
		},
		{
			name: "two events swapped",
			edit: func(t *testing.T, db execer) {
				a, b := canonicalAt(t, db, 10), canonicalAt(t, db, 20)
				exec(t, db, `UPDATE events SET canonical = ?, leaf = ?, id = 'tmp' WHERE position = 10`, b, ledger.LeafHash(b))
				exec(t, db, `UPDATE events SET canonical = ?, leaf = ? WHERE position = 20`, a, ledger.LeafHash(a))
				rehashTree(t, db)
			},
			position: 10, reason: "revision",
		},
		{
			name: "event rewritten and every stored hash recomputed",
			edit: func(t *testing.T, db execer) {
				c := bytes.Replace(canonicalAt(t, db, 17), []byte(`"Step"`), []byte(`"Stop"`), 1)
				exec(t, db, `UPDATE events SET canonical = ?, leaf = ? WHERE position = 17`, c, ledger.LeafHash(c))
				rehashTree(t, db)
			},
			position: 17, reason: "do not match the signed checkpoint",
		},
		{
			name: "checkpoints replaced by ones signed with another key",
			edit: func(t *testing.T, db execer) {
				var origin string
				db.QueryRow(`SELECT 'docket/' || value FROM meta WHERE key = 'ledger_id'`).Scan(&origin)
				ns, _ := anchors.NewNoteSigner(origin, other)
				for _, n := range o.notes {
					cp, _ := ledger.CheckpointBody(n)
					signed, err := ns.SignNote(context.Background(), cp.Body())
					if err != nil {
						t.Fatal(err)
					}
					exec(t, db, `UPDATE checkpoints SET note = ? WHERE size = ?`, signed, int64(cp.Size))
				}
				exec(t, db, `INSERT INTO keys (fingerprint, spki, added_at) VALUES (?, ?, 'now')`, otherFP, mustSPKI(t, other))
			},
			position: -1, reason: "no valid signature by a pinned key",
		},
		{
			name: "checkpoint note corrupted",
			edit: func(t *testing.T, db execer) {
				exec(t, db, `UPDATE checkpoints SET note = CAST('garbage' AS BLOB) WHERE size = 12`)
			},
			position: -1, reason: "unreadable checkpoint",
		},
		{
			name: "tail truncated with its checkpoints, caught by a checkpoint seen earlier",
			edit: func(t *testing.T, db execer) {
				exec(t, db, `DELETE FROM events WHERE position >= 30`)
				exec(t, db, `DELETE FROM checkpoints WHERE size > 30`)
				truncateStreamIndex(t, db, 30)
				rehashTree(t, db)
			},
			trusted:  o.notes[35:36],
			position: 30, reason: "log truncated",
		},
		{
			name:     "an event's stream column moved to hide it from its stream",
			edit:     func(t *testing.T, db execer) { exec(t, db, `UPDATE events SET stream = 'hidden' WHERE position = 17`) },
			position: 17, reason: "stored index",
		},
		{
			name:     "an event's revision column changed to reorder its stream",
			edit:     func(t *testing.T, db execer) { exec(t, db, `UPDATE events SET revision = 999 WHERE position = 17`) },
			position: 17, reason: "stored index",
		},
		{
			name:     "a stream index row deleted to hide an event from its stream",
			edit:     func(t *testing.T, db execer) { exec(t, db, `DELETE FROM streams WHERE position = 17`) },
			position: 17, reason: "stream index has no row",
		},
		{
			name:     "a stream index row moved to another stream",
			edit:     func(t *testing.T, db execer) { exec(t, db, `UPDATE streams SET stream = 'hidden' WHERE position = 17`) },
			position: 17, reason: "stream index row (stream hidden",
		},
		{
			name: "a stream index row forged for an event that is not there",
			edit: func(t *testing.T, db execer) {
				exec(t, db, `INSERT INTO streams (position, stream, revision) VALUES (1000, 'change-1', 99)`)
			},
			position: -1, reason: "1 of its rows are for positions it does not cover",
		},
		{
			name: "the stream index's watermark raised, with a row forged below position 0",
			edit: func(t *testing.T, db execer) {
				exec(t, db, `UPDATE meta SET value = '41' WHERE key = 'streams_indexed'`)
				exec(t, db, `INSERT INTO streams (position, stream, revision) VALUES (-1, 'change-1', 1000)`)
			},
			position: -1, reason: "watermark 41 is outside the log's 40 events",
		},
		{
			name: "a row forged at a negative position",
			edit: func(t *testing.T, db execer) {
				forged := []byte(`{"actor":{"id":"mallory","kind":"human"},"data":{},"id":"forged-3","revision":500,"stream":"change-1","time":"2026-01-01T00:00:00Z","type":"PlanApproved"}`)
				exec(t, db, `INSERT INTO events (position, id, stream, revision, leaf, canonical) VALUES (-5, 'forged-3', 'change-1', 500, ?, ?)`, ledger.LeafHash(forged), forged)
			},
			position: -5, reason: "negative",
		},
		{
			name: "event appended after the last checkpoint",
			edit: func(t *testing.T, db execer) {
				forged := []byte(`{"actor":{"id":"mallory","kind":"human"},"data":{},"id":"forged-2","revision":0,"stream":"forged","time":"2026-01-01T00:00:00Z","type":"PlanApproved"}`)
				exec(t, db, `INSERT INTO events (position, id, stream, revision, leaf, canonical) VALUES (40, 'forged-2', 'forged', 0, ?, ?)`, ledger.LeafHash(forged), forged)
			},
			position: 40, reason: "not covered by any signed checkpoint",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := o.copy(t)
			tamper(t, path, func(db execer) { tc.edit(t, db) })
			_, err := verifyFile(t, path, []string{o.fp}, tc.trusted)
			var f *ledger.Failure
			if !errors.As(err, &f) {
				t.Fatalf("verify: got %v, want a *ledger.Failure", err)
			}
			if f.Position != tc.position || !strings.Contains(f.Reason, tc.reason) {
				t.Fatalf("got %q (position %d), want position %d and a reason with %q", err, f.Position, tc.position, tc.reason)
			}
		})
	}
	t.Run("truncation without an earlier checkpoint goes unnoticed", func(t *testing.T) {
		// Documents why --since-checkpoint exists.
		path := o.copy(t)
		tamper(t, path, func(db execer) {
			exec(t, db, `DELETE FROM events WHERE position >= 30`)
			exec(t, db, `DELETE FROM checkpoints WHERE size > 30`)
			truncateStreamIndex(t, db, 30)
		})
		if _, err := verifyFile(t, path, []string{o.fp}, nil); err != nil {
			t.Fatalf("got %v, want the truncated prefix to verify on its own", err)
		}
	})
	t.Run("the pinned fingerprint is the trust root", func(t *testing.T) {
		path := o.copy(t)
		tamper(t, path, func(db execer) { cases[5].edit(t, db) })
		if _, err := verifyFile(t, path, []string{otherFP}, nil); err != nil {
			t.Fatalf("pinning the attacker's key: got %v, want it to verify (re-signed roots are unchanged)", err)
		}
	})
}

func TestOpenRejectsNonLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	os.WriteFile(path, []byte("this is not a database, just some text that is long enough"), 0o600)
	if _, err := sqlite.Open(context.Background(), path, sqlite.Options{ReadOnly: true}); err == nil {
		t.Fatal("opening a file that is not a ledger must fail")
	}
	if _, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "none.db"), sqlite.Options{ReadOnly: true}); !errors.Is(err, sqlite.ErrNoLedger) {
		t.Fatalf("read-only open of a missing file: got %v, want ErrNoLedger", err)
	}
}

// TestVerifyWhileWriting: verification beside a running writer passes and
// counts the tail not yet signed; the same tail at rest fails.
func TestVerifyWhileWriting(t *testing.T) {
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	fill(t, s, 5)
	if _, err := s.Append(context.Background(), "s", ledger.Any, storetest.Event("E"), storetest.Event("F")); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, f.db, []string{f.fp}, nil)
	if err != nil || rep.Unsigned != 2 {
		t.Fatalf("live verify: %+v %v, want ok with 2 unsigned events", rep, err)
	}
	// A writer that died without signing leaves the tail uncovered: at rest
	// that fails (reopening with the key signs it).
	s.CrashForTest()
	if _, err := verifyFile(t, f.db, []string{f.fp}, nil); err == nil || !strings.Contains(err.Error(), "not covered") {
		t.Fatalf("at rest: got %v, want the uncovered tail to fail", err)
	}
}
