package esdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"golang.org/x/mod/sumdb/note"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/ledger"
)

// Event types of the checkpoint stream.
const (
	typeLedgerCreated    = "LedgerCreated"
	typeKeyAdded         = "KeyAdded"
	typeCheckpointSigned = "CheckpointSigned"
)

type ledgerCreated struct {
	LedgerID string `json:"ledger_id"`
	Prefix   string `json:"prefix"`
}

type keyAdded struct {
	Fingerprint string `json:"fingerprint"`
	SPKI        []byte `json:"spki"`
}

type checkpointSigned struct {
	Size     uint64 `json:"size"`
	Root     []byte `json:"root"`
	Note     string `json:"note"`
	SignedAt string `json:"signed_at"`
}

// cpEvent is one event of the checkpoint stream.
type cpEvent struct {
	revision uint64
	typ      string
	data     []byte
}

// checkpointStream reads the whole checkpoint stream. found is false when
// it does not exist (or was soft-deleted).
func (l *Log) checkpointStream(ctx context.Context) ([]cpEvent, bool, error) {
	evs, found, err := l.readStream(ctx, l.cpStream, 0, false, 0)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", l.cpStream, err)
	}
	out := make([]cpEvent, len(evs))
	for i, e := range evs {
		out[i] = cpEvent{revision: e.EventNumber, typ: e.EventType, data: e.Data}
	}
	return out, found, nil
}

// appendCheckpointStream appends one event at exactly the given expected
// state; a conflict is ledger.ErrWrongRevision.
func (l *Log) appendCheckpointStream(ctx context.Context, state kurrentdb.StreamState, typ string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ev := kurrentdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: kurrentdb.ContentTypeJson, Data: data}
	err = l.do(ctx, func(c *kurrentdb.Client) error {
		_, err := c.AppendToStream(ctx, l.cpStream, kurrentdb.AppendToStreamOptions{StreamState: state}, ev)
		return err
	})
	if cd, _ := code(err); cd == kurrentdb.ErrorCodeWrongExpectedVersion {
		return fmt.Errorf("append %s: %v: %w", l.cpStream, err, ledger.ErrWrongRevision)
	}
	return err
}

// LedgerID returns the ledger id recorded at revision 0 of the checkpoint
// stream. It fails if that event is missing: the checkpoint stream was
// deleted or truncated, and so was the root of trust's origin line.
func (l *Log) LedgerID(ctx context.Context) (string, error) {
	evs, found, err := l.checkpointStream(ctx)
	if err != nil {
		return "", err
	}
	if !found || len(evs) == 0 {
		return "", errNoLedger
	}
	return ledgerIDOf(evs[0])
}

var errNoLedger = errors.New("no Docket ledger in EventStoreDB (the checkpoint stream is missing)")

func ledgerIDOf(e cpEvent) (string, error) {
	var lc ledgerCreated
	if e.revision != 0 || e.typ != typeLedgerCreated || json.Unmarshal(e.data, &lc) != nil || lc.LedgerID == "" {
		return "", &ledger.Failure{Position: -1, Reason: fmt.Sprintf(
			"the checkpoint stream's first readable event is %s at revision %d, not LedgerCreated at 0: the stream was truncated, deleted or rewritten", e.typ, e.revision)}
	}
	return lc.LedgerID, nil
}

// ensureLedger returns the ledger id, creating the ledger (the checkpoint
// stream's first event) if there is none. Two nodes creating it at once
// agree: the second gets WrongRevision and reads the first's.
func (l *Log) ensureLedger(ctx context.Context) (string, error) {
	for range 3 {
		id, err := l.LedgerID(ctx)
		if !errors.Is(err, errNoLedger) {
			return id, err
		}
		err = l.appendCheckpointStream(ctx, kurrentdb.NoStream{}, typeLedgerCreated, ledgerCreated{LedgerID: uuid.Must(uuid.NewV7()).String(), Prefix: l.prefix})
		if err != nil && !errors.Is(err, ledger.ErrWrongRevision) {
			return "", fmt.Errorf("create ledger: %w", err)
		}
	}
	return "", errors.New("create ledger: the checkpoint stream keeps changing")
}

// Keys returns the SPKI DER of every key recorded in the checkpoint stream,
// by fingerprint. Verification pins fingerprints; the material comes from
// here and is checked against them, so a forged KeyAdded cannot help.
func (l *Log) Keys(ctx context.Context) (map[string][]byte, error) {
	evs, _, err := l.checkpointStream(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range evs {
		var k keyAdded
		if e.typ != typeKeyAdded || json.Unmarshal(e.data, &k) != nil {
			continue
		}
		// Only key material that has the fingerprint it is filed under
		// counts: a KeyAdded with junk bytes cannot shadow the real key.
		fp := strings.ToLower(k.Fingerprint)
		if pub, err := anchors.ParsePublicKey(k.SPKI); err == nil {
			if got, err := anchors.Fingerprint(pub); err == nil && got == fp && out[fp] == nil {
				out[fp] = k.SPKI
			}
		}
	}
	return out, nil
}

// addKey records the signer's key once.
func (l *Log) addKey(ctx context.Context, s anchors.Signer) error {
	fp, err := anchors.Fingerprint(s.Public())
	if err != nil {
		return err
	}
	spki, err := anchors.SPKI(s.Public())
	if err != nil {
		return err
	}
	for range 10 {
		evs, _, err := l.checkpointStream(ctx)
		if err != nil {
			return err
		}
		for _, e := range evs {
			var k keyAdded
			if e.typ == typeKeyAdded && json.Unmarshal(e.data, &k) == nil && k.Fingerprint == fp {
				return nil
			}
		}
		err = l.appendCheckpointStream(ctx, kurrentdb.Revision(evs[len(evs)-1].revision), typeKeyAdded, keyAdded{Fingerprint: fp, SPKI: spki})
		if !errors.Is(err, ledger.ErrWrongRevision) {
			return err
		}
	}
	return errors.New("record signing key: the checkpoint stream keeps changing")
}

// Checkpoints returns every signed checkpoint note in the checkpoint
// stream, in stream order. A checkpoint stream that was truncated or
// rewritten is a *ledger.Failure.
func (l *Log) Checkpoints(ctx context.Context) ([][]byte, error) {
	evs, found, err := l.checkpointStream(ctx)
	if err := l.cpStreamGone(err, found, len(evs)); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if _, err := ledgerIDOf(evs[0]); err != nil {
		return nil, err
	}
	var out [][]byte
	for i, e := range evs {
		if e.revision != uint64(i) {
			return nil, &ledger.Failure{Position: -1, Reason: fmt.Sprintf("the checkpoint stream jumps from revision %d to %d: checkpoints were removed", i-1, e.revision)}
		}
		if e.typ != typeCheckpointSigned {
			continue
		}
		note, err := signedNote(e.revision, e.data)
		if err != nil {
			return nil, err
		}
		out = append(out, note)
	}
	return out, nil
}

// cpStreamGone is the ledger failure of a read of the checkpoint stream
// that found it tombstoned, missing or empty; nil otherwise.
func (l *Log) cpStreamGone(err error, found bool, events int) error {
	if errors.Is(err, errTombstoned) {
		return &ledger.Failure{Position: -1, Reason: fmt.Sprintf("the checkpoint stream %s was tombstoned in EventStoreDB", l.cpStream)}
	}
	if err == nil && (!found || events == 0) {
		return &ledger.Failure{Position: -1, Reason: fmt.Sprintf("the checkpoint stream %s is missing or was deleted in EventStoreDB", l.cpStream)}
	}
	return nil
}

// signedNote is the note of the CheckpointSigned event at revision rev.
func signedNote(rev uint64, data []byte) ([]byte, error) {
	var c checkpointSigned
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, &ledger.Failure{Position: -1, Reason: fmt.Sprintf("checkpoint stream revision %d does not parse: %v", rev, err)}
	}
	return []byte(c.Note), nil
}

// RecentCheckpoints returns the signed notes of the n latest checkpoints,
// latest first, reading the checkpoint stream backwards only as far as it
// must (key records stand between checkpoints now and then).
func (l *Log) RecentCheckpoints(ctx context.Context, n int) ([][]byte, error) {
	for count := uint64(n); ; count *= 2 {
		evs, found, err := l.readStream(ctx, l.cpStream, 0, true, count)
		if err := l.cpStreamGone(err, found, len(evs)); err != nil {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", l.cpStream, err)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].EventNumber != evs[i-1].EventNumber-1 {
				return nil, &ledger.Failure{Position: -1, Reason: fmt.Sprintf("the checkpoint stream jumps from revision %d to %d: checkpoints were removed", evs[i].EventNumber, evs[i-1].EventNumber)}
			}
		}
		var out [][]byte
		for _, e := range evs {
			if e.EventType != typeCheckpointSigned || len(out) == n {
				continue
			}
			note, err := signedNote(e.EventNumber, e.Data)
			if err != nil {
				return nil, err
			}
			out = append(out, note)
		}
		if uint64(len(evs)) < count && evs[len(evs)-1].EventNumber != 0 {
			return nil, &ledger.Failure{Position: -1, Reason: fmt.Sprintf("the checkpoint stream begins at revision %d, not 0: its start was removed", evs[len(evs)-1].EventNumber)}
		}
		if len(out) == n || uint64(len(evs)) < count {
			return out, nil
		}
	}
}

// latestCheckpoint returns the last CheckpointSigned event and the
// revision of the checkpoint stream's last event.
func (l *Log) latestCheckpoint(ctx context.Context) (c checkpointSigned, found bool, lastRev uint64, err error) {
	evs, _, err := l.checkpointStream(ctx)
	if err != nil {
		return c, false, 0, err
	}
	if len(evs) == 0 {
		return c, false, 0, errNoLedger
	}
	lastRev = evs[len(evs)-1].revision
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].typ == typeCheckpointSigned {
			if err := json.Unmarshal(evs[i].data, &c); err != nil {
				return c, false, lastRev, fmt.Errorf("checkpoint at revision %d: %w", evs[i].revision, err)
			}
			return c, true, lastRev, nil
		}
	}
	return c, false, lastRev, nil
}

// LatestCheckpoint returns the signed note of the latest checkpoint.
func (l *Log) LatestCheckpoint(ctx context.Context) ([]byte, bool, error) {
	c, found, _, err := l.latestCheckpoint(ctx)
	if err != nil || !found {
		return nil, false, err
	}
	return []byte(c.Note), true, nil
}

// AddCheckpoint appends a signed checkpoint at exactly the revision after
// the checkpoint stream's last event; it refuses a size not larger than the
// latest. A node that lost a race gets an error wrapping
// ledger.ErrWrongRevision and signs again on its next round.
func (l *Log) AddCheckpoint(ctx context.Context, cp ledger.Checkpoint, signed []byte) error {
	last, found, lastRev, err := l.latestCheckpoint(ctx)
	if err != nil {
		return err
	}
	return l.addCheckpointAt(ctx, &cpSnapshot{last: last, found: found, lastRev: lastRev}, cp, signed)
}

// addCheckpointAt appends a checkpoint right after the checkpoint stream
// as snap saw it.
func (l *Log) addCheckpointAt(ctx context.Context, snap *cpSnapshot, cp ledger.Checkpoint, signed []byte) error {
	if snap.found && cp.Size <= snap.last.Size {
		// Another node got there first: a lost race, like a conflict.
		return fmt.Errorf("checkpoint of size %d is not larger than the stored %d: %w", cp.Size, snap.last.Size, ledger.ErrWrongRevision)
	}
	return l.appendCheckpointStream(ctx, kurrentdb.Revision(snap.lastRev), typeCheckpointSigned, checkpointSigned{
		Size: cp.Size, Root: cp.Root, Note: string(signed), SignedAt: time.Now().UTC().Format(time.RFC3339Nano)})
}

// Verifiers returns note verifiers for the pinned fingerprints, with the
// key material recorded in the checkpoint stream.
func (l *Log) Verifiers(ctx context.Context, origin string, fingerprints ...string) (note.Verifiers, error) {
	keys, err := l.Keys(ctx)
	if err != nil {
		return nil, err
	}
	return anchors.PinnedVerifiers(origin, keys, fingerprints...)
}
