package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/evidence-parity/docket/ledger"
)

// CheckpointSignedAt returns when the checkpoint of the given size was
// signed, by this store's clock.
func (s *Store) CheckpointSignedAt(ctx context.Context, size uint64) (time.Time, error) {
	var at string
	err := s.rdb.QueryRowContext(ctx, `SELECT signed_at FROM checkpoints WHERE size = ?`, size).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, fmt.Errorf("checkpoint %d: %w", size, ledger.ErrNoEvent)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read checkpoint %d: %w", size, err)
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return time.Time{}, fmt.Errorf("checkpoint %d: signed_at %q: %w", size, at, err)
	}
	return t, nil
}

// SignerFingerprint is the fingerprint of the key this store signs
// checkpoints with ("" for a store without a signer).
func (s *Store) SignerFingerprint() string {
	if s.noteSigner == nil {
		return ""
	}
	sum := sha256.Sum256(s.noteSigner.SPKI())
	return hex.EncodeToString(sum[:])
}
