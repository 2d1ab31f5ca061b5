package esdb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/esdb"
	"github.com/evidence-parity/docket/ledger/esdb/esdbtest"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// server is the EventStoreDB the tests use: a real one at DOCKET_ESDB_URL,
// else the protocol-level stand-in (esdbtest), one per test binary.
type server struct {
	url     string
	standIn *esdbtest.Server // nil against a real server
}

var (
	shared  *server
	counter atomic.Uint64
)

func TestMain(m *testing.M) {
	if url := os.Getenv("DOCKET_ESDB_URL"); url != "" {
		shared = &server{url: url}
	} else {
		s, err := esdbtest.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		shared = &server{url: s.URL(), standIn: s}
	}
	code := m.Run()
	if shared.standIn != nil {
		shared.standIn.Stop()
	}
	os.Exit(code)
}

// names returns a prefix and checkpoint stream no other test uses, so
// every store is a fresh ledger even on a shared real server.
func names(t *testing.T) esdb.Remote {
	n := counter.Add(1)
	tag := fmt.Sprintf("t%d%d", os.Getpid(), n)
	// Not under the default prefix "docket-": prefixes must not nest, or
	// a ledger on the default prefix of a shared server would find these
	// streams' events foreign.
	return esdb.Remote{URL: shared.url, Prefix: "dkt" + tag + "-", CheckpointStream: "dkt" + tag + ".checkpoints"}
}

func openStore(t *testing.T, cfg esdb.Config) *esdb.Store {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "index.db")
	}
	s, err := esdb.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ledger.Store {
		return openStore(t, esdb.Config{Remote: names(t)})
	})
}

// TestAppendedEventsAreInTheHead: once Append returns, the tree head (what
// a checkpoint signs) covers its events. The follower commits its index
// rows before it publishes the new head, so an Append that counted
// committed rows could return inside that gap, and a checkpoint signed
// right after it would leave its events out (seen once in CI under -race).
func TestAppendedEventsAreInTheHead(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, esdb.Config{Remote: names(t)})
	for i := range 200 {
		recs, err := s.Append(ctx, fmt.Sprintf("change-%d", i%4), ledger.Any, storetest.Event("Step", "n", i))
		if err != nil {
			t.Fatal(err)
		}
		size, _, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if last := recs[len(recs)-1].Position; size <= last {
			t.Fatalf("append %d returned position %d, but the head is %d events", i, last, size)
		}
	}
}
