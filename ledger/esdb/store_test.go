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
