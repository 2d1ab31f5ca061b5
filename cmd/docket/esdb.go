package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/esdb"
)

// serverLedger is the ledger store the server and its exports run on: the
// embedded SQLite store (ledger/sqlite) or the EventStoreDB store
// (ledger/esdb). Both keep the tree and checkpoints behind these methods.
type serverLedger interface {
	ledger.Store
	Head(ctx context.Context) (size uint64, root []byte, err error)
	LatestCheckpoint(ctx context.Context) ([]byte, bool, error)
	Checkpoints(ctx context.Context) ([][]byte, error)
	RecentCheckpoints(ctx context.Context, n int) ([][]byte, error)
	InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error)
	Lookup(ctx context.Context, id string) (ledger.Record, error)
	Keys(ctx context.Context) (map[string][]byte, error)
	Verifiers(ctx context.Context, fingerprints ...string) (note.Verifiers, error)
	SignerFingerprint() string
	CheckpointErr() error
	Origin() string
	Path() string
	Close() error
}

// esdbFlags are --esdb and --esdb-prefix: with a URL the command's ledger
// is in EventStoreDB instead of the embedded SQLite file.
type esdbFlags struct {
	url, prefix *string
	maxAppend   *int
}

func addESDBFlags(c *cobra.Command) esdbFlags {
	return esdbFlags{
		url: c.Flags().String("esdb", envOr("DOCKET_ESDB", ""),
			"keep the ledger in EventStoreDB / KurrentDB at this URL (esdb://host:2113?tls=false, kurrentdb+discover://…); the derived tree stays in --data (env DOCKET_ESDB)"),
		prefix: c.Flags().String("esdb-prefix", envOr("DOCKET_ESDB_PREFIX", esdb.DefaultPrefix),
			"EventStoreDB stream name prefix of the ledger's streams; its checkpoints are in <prefix without trailing '-'>.checkpoints (env DOCKET_ESDB_PREFIX)"),
		maxAppend: c.Flags().Int("esdb-max-append-size", esdb.DefaultMaxAppendSize,
			"the server's MaxAppendSize in bytes: one append (one atomic write) must fit it"),
	}
}

func (f esdbFlags) set() bool { return *f.url != "" }

func (f esdbFlags) remote() esdb.Remote { return esdb.Remote{URL: *f.url, Prefix: *f.prefix} }

// esdbIndexPath is the node's local index of an EventStoreDB ledger.
func esdbIndexPath(data string) string { return filepath.Join(data, "esdb-index.db") }

// openESDB opens the EventStoreDB ledger with the given signer (nil signs
// nothing) and clock (nil: time.Now).
func (f esdbFlags) open(ctx context.Context, data string, signer anchors.Signer, now func() time.Time) (*esdb.Store, error) {
	if err := os.MkdirAll(filepath.Dir(witnessPath(data)), 0o700); err != nil {
		return nil, err
	}
	s, err := esdb.Open(ctx, esdb.Config{Remote: f.remote(), Path: esdbIndexPath(data), Signer: signer, Now: now, WitnessPath: witnessPath(data), MaxAppendSize: *f.maxAppend})
	if err != nil {
		return nil, fmt.Errorf("open EventStoreDB ledger: %w", err)
	}
	return s, nil
}

// openIndexed opens the EventStoreDB ledger, signing nothing, with its
// local index at path (built from EventStoreDB when missing), and waits
// until the index holds every event of the latest checkpoint.
func (f esdbFlags) openIndexed(ctx context.Context, path string) (*esdb.Store, error) {
	s, err := esdb.Open(ctx, esdb.Config{Remote: f.remote(), Path: path, MaxAppendSize: *f.maxAppend})
	if err != nil {
		return nil, usageErr("open the EventStoreDB ledger (is --esdb right, and the server up?): %v", err)
	}
	if err := s.WaitCheckpointed(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("index the EventStoreDB ledger: %w", err)
	}
	return s, nil
}

// verify checks the EventStoreDB ledger, re-read from EventStoreDB.
func (f esdbFlags) verify(ctx context.Context, pinned []string, trusted [][]byte, live bool) (ledger.Report, error) {
	l, err := esdb.Dial(f.remote())
	if err != nil {
		return ledger.Report{}, usageErr("--esdb: %v", err)
	}
	defer l.Close()
	rep, err := l.Verify(ctx, pinned, trusted, live)
	var fl *ledger.Failure
	if errors.As(err, &fl) {
		return rep, failed(fmt.Errorf("verification FAILED: %w", err))
	}
	if err != nil {
		// Nothing was found wrong: the ledger could not be read. That is
		// not a failed verification (exit 1) but a setting to check.
		return rep, usageErr("could not read the EventStoreDB ledger (is --esdb right, and the server up?): %v", err)
	}
	return rep, nil
}

// latest returns the EventStoreDB ledger's latest signed checkpoint.
func (f esdbFlags) latest(ctx context.Context) ([]byte, error) {
	l, err := esdb.Dial(f.remote())
	if err != nil {
		return nil, usageErr("--esdb: %v", err)
	}
	defer l.Close()
	n, found, err := l.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, usageErr("the ledger is empty: no checkpoint yet")
	}
	return n, nil
}
