package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/evidence-parity/docket/anchors"
)

// CheckpointLog is what a Checkpointer needs from a store.
//
// Head returns the size and root of the tree over every durable event.
// LatestCheckpoint returns the signed note of the largest checkpoint stored,
// or found == false when there is none. AddCheckpoint stores a signed note
// durably; it MUST refuse a size not larger than the latest one.
type CheckpointLog interface {
	Tree
	Head(ctx context.Context) (size uint64, root []byte, err error)
	LatestCheckpoint(ctx context.Context) (signed []byte, found bool, err error)
	AddCheckpoint(ctx context.Context, c Checkpoint, signed []byte) error
}

// ErrInconsistent is returned when the tree to be signed is not an extension
// of the last signed checkpoint: the log was rewritten, and the checkpointer
// refuses to sign it.
var ErrInconsistent = errors.New("tree is not consistent with the last signed checkpoint")

// Checkpointer signs checkpoints of a log: at most once per interval, and
// only when the tree grew, after checking with a consistency proof that the
// new tree extends the last signed one.
type Checkpointer struct {
	log      CheckpointLog
	signer   *anchors.NoteSigner
	interval time.Duration
	now      func() time.Time
	logger   *slog.Logger

	witness Witness

	mu      sync.Mutex // serialises Sign
	lastErr error
}

// CheckpointerConfig configures a Checkpointer.
type CheckpointerConfig struct {
	// Interval is the least time between two signatures (default 1s).
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives signing failures (default slog.Default()).
	Logger *slog.Logger
	// Witness, if set, remembers the last signed checkpoint outside the log.
	Witness Witness
}

// NewCheckpointer returns a Checkpointer for log whose notes signer signs;
// the signer's name is the log's origin.
func NewCheckpointer(log CheckpointLog, signer *anchors.NoteSigner, cfg CheckpointerConfig) *Checkpointer {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Checkpointer{log: log, signer: signer, interval: cfg.Interval, now: cfg.Now, logger: cfg.Logger, witness: cfg.Witness}
}

// Sign signs and stores a checkpoint of the current tree head if the tree
// grew since the latest checkpoint. It returns the latest checkpoint and
// whether it signed a new one.
func (c *Checkpointer) Sign(ctx context.Context) (Checkpoint, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, signed, err := c.sign(ctx)
	c.lastErr = err
	return cp, signed, err
}

func (c *Checkpointer) sign(ctx context.Context) (Checkpoint, bool, error) {
	size, root, err := c.log.Head(ctx)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint: %w", err)
	}
	origin := c.signer.Name()
	last, found, err := c.latestStored(ctx, origin)
	if err != nil {
		return Checkpoint{}, false, err
	}
	// The base the new tree must extend: what this signer last signed, as
	// the witness remembers it outside the database; else the stored one.
	base, haveBase := last, found
	if c.witness != nil {
		wnote, err := c.witness.Load()
		if err != nil {
			return last, false, fmt.Errorf("checkpoint: witness: %w", err)
		}
		if wnote != nil {
			w, err := CheckpointBody(wnote)
			if err != nil {
				return last, false, fmt.Errorf("checkpoint: witness: %w", err)
			}
			if !found || last.Size < w.Size {
				return last, false, fmt.Errorf("checkpoint: the stored checkpoints end at size %d, but this signer signed size %d: checkpoints were removed: %w", last.Size, w.Size, ErrInconsistent)
			}
			if w.Origin != origin {
				return last, false, fmt.Errorf("checkpoint: the witness holds origin %q, the signer signs for %q", w.Origin, origin)
			}
			base, haveBase = w, true
		}
	}
	if haveBase {
		if err := c.extends(ctx, base, size, root); err != nil {
			return last, false, err
		}
		if found && last.Size > base.Size {
			// Signed and stored, but the witness missed it (a crash between
			// the two): the stored one must extend the witnessed one too.
			if err := c.extends(ctx, base, last.Size, last.Root); err != nil {
				return last, false, err
			}
		}
	} else if size == 0 {
		return Checkpoint{}, false, nil
	}
	if found && last.Size >= size {
		return last, false, c.remember(ctx, last)
	}
	cp := Checkpoint{Origin: origin, Size: size, Root: root}
	signedNote, err := c.signer.SignNote(ctx, cp.Body())
	if err != nil {
		return last, false, fmt.Errorf("checkpoint: sign: %w", err)
	}
	if err := c.log.AddCheckpoint(ctx, cp, signedNote); err != nil {
		return last, false, fmt.Errorf("checkpoint: store: %w", err)
	}
	if c.witness != nil {
		if err := c.witness.Save(signedNote); err != nil {
			return cp, true, fmt.Errorf("checkpoint: witness: %w", err)
		}
	}
	return cp, true, nil
}

// latestStored returns the body of the latest stored checkpoint.
func (c *Checkpointer) latestStored(ctx context.Context, origin string) (Checkpoint, bool, error) {
	note, found, err := c.log.LatestCheckpoint(ctx)
	if err != nil || !found {
		return Checkpoint{}, false, err
	}
	last, err := CheckpointBody(note)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint: latest stored: %w", err)
	}
	if last.Origin != origin {
		return last, false, fmt.Errorf("checkpoint: latest stored has origin %q, signer signs for %q", last.Origin, origin)
	}
	return last, true, nil
}

// remember brings the witness up to the latest stored checkpoint.
func (c *Checkpointer) remember(ctx context.Context, last Checkpoint) error {
	if c.witness == nil {
		return nil
	}
	note, _, err := c.log.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	w, err := c.witness.Load()
	if err != nil || bytes.Equal(w, note) {
		return err
	}
	return c.witness.Save(note)
}

// extends checks that the tree of the given size and root extends base.
func (c *Checkpointer) extends(ctx context.Context, base Checkpoint, size uint64, root []byte) error {
	switch {
	case size < base.Size:
		return fmt.Errorf("checkpoint: log has %d events, a signed checkpoint commits to %d: %w", size, base.Size, ErrInconsistent)
	case size == base.Size:
		if !bytes.Equal(root, base.Root) {
			return fmt.Errorf("checkpoint: root at size %d differs from the signed one: %w", size, ErrInconsistent)
		}
		return nil
	}
	p, err := ConsistencyProof(ctx, c.log, base.Size, size)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := VerifyConsistency(base.Size, size, p, base.Root, root); err != nil {
		return fmt.Errorf("checkpoint: sizes %d → %d: %v: %w", base.Size, size, err, ErrInconsistent)
	}
	return nil
}

// Witness keeps the last checkpoint a signer signed outside the database
// it checkpoints, so an attacker who rewrites the database, and deletes the
// checkpoints that would expose it, cannot get the rewrite signed.
//
// Load returns the saved note, or nil when none was saved. Save MUST
// replace it atomically and durably.
type Witness interface {
	Load() ([]byte, error)
	Save(note []byte) error
}

// FileWitness is a Witness in a file (mode 0600).
type FileWitness string

// Load reads the file; a missing file is no note.
func (f FileWitness) Load() ([]byte, error) {
	b, err := os.ReadFile(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Save replaces the file with the note whole or not at all (renameio: a
// synced temporary file renamed over it).
func (f FileWitness) Save(note []byte) error {
	return renameio.WriteFile(string(f), note, 0o600, renameio.WithTempDir(filepath.Dir(string(f))), renameio.WithStaticPermissions(0o600))
}

// Err returns the outcome of the last signing attempt (nil when it worked).
func (c *Checkpointer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Run signs a checkpoint at start (catching up after a crash) and after each
// signal on grew, at most once per interval, until ctx is done. A failed
// attempt is logged and retried an interval later; appends never wait on it.
func (c *Checkpointer) Run(ctx context.Context, grew <-chan struct{}) {
	dirty := true
	var last time.Time
	for {
		if !dirty {
			select {
			case <-ctx.Done():
				return
			case <-grew:
				dirty = true
			}
		}
		if wait := c.interval - c.now().Sub(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = c.now()
		// Signals that arrived so far are covered: Sign reads the head now.
		select {
		case <-grew:
		default:
		}
		if _, _, err := c.Sign(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.logger.Error("checkpoint not signed", "err", err)
			continue
		}
		dirty = false
	}
}
