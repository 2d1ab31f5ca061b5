package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

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
	return &Checkpointer{log: log, signer: signer, interval: cfg.Interval, now: cfg.Now, logger: cfg.Logger}
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
	note, found, err := c.log.LatestCheckpoint(ctx)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint: %w", err)
	}
	var last Checkpoint
	if found {
		if last, err = CheckpointBody(note); err != nil {
			return Checkpoint{}, false, fmt.Errorf("checkpoint: latest stored: %w", err)
		}
		if last.Origin != origin {
			return last, false, fmt.Errorf("checkpoint: latest stored has origin %q, signer signs for %q", last.Origin, origin)
		}
		if size < last.Size {
			return last, false, fmt.Errorf("checkpoint: log has %d events, the latest checkpoint commits to %d: %w", size, last.Size, ErrInconsistent)
		}
		if size == last.Size {
			if !bytes.Equal(root, last.Root) {
				return last, false, fmt.Errorf("checkpoint: root at size %d differs from the signed one: %w", size, ErrInconsistent)
			}
			return last, false, nil
		}
		p, err := ConsistencyProof(ctx, c.log, last.Size, size)
		if err != nil {
			return last, false, fmt.Errorf("checkpoint: %w", err)
		}
		if err := VerifyConsistency(last.Size, size, p, last.Root, root); err != nil {
			return last, false, fmt.Errorf("checkpoint: sizes %d → %d: %v: %w", last.Size, size, err, ErrInconsistent)
		}
	} else if size == 0 {
		return Checkpoint{}, false, nil
	}
	cp := Checkpoint{Origin: origin, Size: size, Root: root}
	signedNote, err := c.signer.SignNote(ctx, cp.Body())
	if err != nil {
		return last, false, fmt.Errorf("checkpoint: sign: %w", err)
	}
	if err := c.log.AddCheckpoint(ctx, cp, signedNote); err != nil {
		return last, false, fmt.Errorf("checkpoint: store: %w", err)
	}
	return cp, true, nil
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
